"""The one exception type users see: a message that names the thing, what is wrong and what to do."""


class MnistlabError(Exception):
    """A user-facing error. The CLI prints its message as one line and exits non-zero."""


class DataError(MnistlabError):
    """A dataset or data file is missing, corrupt or does not match what was expected."""


class ConfigError(MnistlabError):
    """A setting, option or name given by the user is not valid."""
