"""The one error type the CLI turns into a one-line message and a non-zero exit."""


class HwprofError(Exception):
    """A user-facing failure: the message is complete and printed as is, no traceback.

    exit_code lets a caller distinguish kinds of failure (2 usage, 1 everything else).
    """

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
