// Dashboard behaviour that needs a script (kept out of the HTML for the Content-Security-Policy).
"use strict";

// Refuse a file over the upload limit before sending it, so the form keeps everything already typed.
(function () {
  function megabytes(bytes) {
    return (bytes / 1048576).toLocaleString(undefined, { maximumFractionDigits: 1 });
  }

  function checkSize(input) {
    var limit = Number(input.dataset.maxBytes);
    var file = input.files && input.files[0];
    var message = "";
    if (limit && file && file.size > limit) {
      message = "This file is " + megabytes(file.size) + " MB; the upload limit is " + megabytes(limit) +
        " MB. Split it into smaller files and create one job for each.";
    }
    input.setCustomValidity(message);
    return message === "";
  }

  document.addEventListener("change", function (event) {
    var input = event.target;
    if (input instanceof HTMLInputElement && input.type === "file" && input.dataset.maxBytes) {
      if (!checkSize(input)) {
        input.reportValidity();
      }
    }
  });

  document.addEventListener("submit", function (event) {
    var inputs = event.target.querySelectorAll("input[type=file][data-max-bytes]");
    for (var i = 0; i < inputs.length; i++) {
      if (!checkSize(inputs[i])) {
        event.preventDefault();
        inputs[i].reportValidity();
        return;
      }
    }
  });
})();

// Ask before a destructive form is sent: <form data-confirm="Remove this user?">.
document.addEventListener("submit", function (event) {
  var question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
