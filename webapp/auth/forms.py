"""Forms for signing in, setting up, passwords, tokens and user administration."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length

from webapp.services.accounts import MIN_PASSWORD, PASSWORD_RULE

EXPIRY_CHOICES = [
    SelectChoice("", "Never"),
    SelectChoice("7", "7 days"),
    SelectChoice("30", "30 days"),
    SelectChoice("90", "90 days"),
    SelectChoice("365", "1 year"),
]
ROLE_CHOICES = [SelectChoice("member", "Member"), SelectChoice("admin", "Admin")]


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired()])
    remember = BooleanField("Remember me")


class SetupForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField(
        "Password", validators=[DataRequired(), Length(min=MIN_PASSWORD)], description=PASSWORD_RULE
    )
    confirm = PasswordField("Repeat the password", validators=[EqualTo("password", "the passwords differ")])


class PasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired()])
    new_password = PasswordField(
        "New password", validators=[DataRequired(), Length(min=MIN_PASSWORD)], description=PASSWORD_RULE
    )
    confirm = PasswordField("Repeat the new password", validators=[EqualTo("new_password", "the passwords differ")])


class TokenForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=100)])
    expires_in_days = SelectField("Expires", choices=EXPIRY_CHOICES, default="90")


class NewUserForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField(
        "Initial password", validators=[DataRequired(), Length(min=MIN_PASSWORD)], description=PASSWORD_RULE
    )
    role = SelectField("Role", choices=ROLE_CHOICES, default="member")


class ResetPasswordForm(FlaskForm):
    password = PasswordField(
        "New password", validators=[DataRequired(), Length(min=MIN_PASSWORD)], description=PASSWORD_RULE
    )


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES)


class ActionForm(FlaskForm):
    """A button-only form: carries the CSRF token."""
