"""Small, torch-free utilities shared by every part of the codebase."""

from .util import EasyDict, make_cache_dir_path  # noqa: F401
