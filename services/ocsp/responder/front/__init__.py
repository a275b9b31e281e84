"""The lean front of the ocsp port: httptools parsing, OCSP answered without aiohttp,
everything else handed over to aiohttp's protocol on the same connection."""
from services.ocsp.responder.front.site import FrontSite, routed_elsewhere

__all__ = ["FrontSite", "routed_elsewhere"]
