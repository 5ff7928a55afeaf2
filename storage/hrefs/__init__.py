"""The href policy: parsing, allow-lists, address checks and a safe downloader.

``HrefPolicy.from_settings(settings).check(href)`` admits an href or raises
:class:`HrefRefusedError` naming the href and the rule; :func:`download` fetches an
admitted http(s) URL, re-checking every redirect.
"""

from gravitas.storage.hrefs.errors import HrefFetchError, HrefRefusedError
from gravitas.storage.hrefs.fetch import download
from gravitas.storage.hrefs.parse import ParsedHref, parse_href
from gravitas.storage.hrefs.policy import CheckedHref, HrefPolicy

__all__ = [
    "CheckedHref",
    "HrefFetchError",
    "HrefPolicy",
    "HrefRefusedError",
    "ParsedHref",
    "download",
    "parse_href",
]
