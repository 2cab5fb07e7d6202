"""Request intake: files and request lists from users checked, read and stored as a job's requests.

``formats`` tells what a file is; ``files`` keeps uploads between form steps; ``jsonl`` reads OpenAI batch lines,
``tables`` spreadsheets (``csv_files``) as a header and rows, which ``mapping`` turns into request bodies
(``table_requests``); ``requests`` validates and inserts them and ``store`` records an upload on the job;
``imports`` is the use case both the dashboard and the API call.
"""
