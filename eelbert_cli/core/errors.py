"""The one exception type a user sees: its message names the thing to fix; the CLI exits 2."""


class EelbertError(Exception):
    """A problem with the user's input (spec, file, data, checkpoint) rather than a bug."""
