"""The one exception type the scripts turn into a readable one-line error."""


class StudyError(Exception):
    """Bad input or settings: the message says what was expected and what was found."""
