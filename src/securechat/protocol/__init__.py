"""Protocol v1: wire formats, canonical bytes and client-side cryptography.

This package is pure: it performs no I/O and imports nothing else from SecureChat.
The server uses it to validate shapes and sizes; clients use it to seal and open.
"""

PROTOCOL_VERSION = 1
