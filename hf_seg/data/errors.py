"""The one error type of hf_seg.data: bad data or data settings, with a one-line message naming the fix."""

from hf_seg.errors import HfSegError


class DataError(HfSegError):
    """A data source, split or augmentation setting is wrong; the message names the file/key, the value and the fix."""
