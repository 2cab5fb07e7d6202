"""The blueprint of the accounts pages."""

from flask import Blueprint

bp = Blueprint("auth", __name__)
