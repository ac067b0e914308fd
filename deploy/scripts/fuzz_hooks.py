"""schemathesis hooks for deploy/scripts/fuzz.sh (loaded through SCHEMATHESIS_HOOKS).

Storage's TUS routes (`/storage/v1/upload/resumable`) take their bytes as
`application/offset+octet-stream`, a media type schemathesis has no serializer for: it is sent
as raw bytes, as `application/octet-stream` is.
"""

import schemathesis

schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
