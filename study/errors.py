"""The one exception type the scripts turn into a readable one-line error."""


class StudyError(Exception):
    """Bad input or settings: the message says what was expected and what was found."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM, raised where the script can still end in order (temp files removed); exit 128 + signal."""

    def __init__(self, signum: int, note: str = ""):
        super().__init__(signum)
        self.signum, self.note = signum, note
