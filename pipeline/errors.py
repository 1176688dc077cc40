"""One exception type for user mistakes: the CLI prints it as one line and exits 1."""


class UserError(Exception):
    """Bad input (config, data, paths, choices) that the user can fix; the message says how."""
