"""Object storage for whole files (COGs, NetCDF, Zarr): a local directory or S3.

``open_object_store("file:///dir")`` or ``open_object_store("s3://bucket/prefix?endpoint=
host:port")`` returns an :class:`ObjectStore`; keys are checked by :func:`check_key`.
"""

from gravitas.storage.objects.base import ObjectStat, ObjectStore
from gravitas.storage.objects.errors import ObjectNotFoundError, ObjectStoreError
from gravitas.storage.objects.factory import open_object_store
from gravitas.storage.objects.keys import check_key

__all__ = [
    "ObjectNotFoundError",
    "ObjectStat",
    "ObjectStore",
    "ObjectStoreError",
    "check_key",
    "open_object_store",
]
