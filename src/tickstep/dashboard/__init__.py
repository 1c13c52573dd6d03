"""The dashboard's Python side: the offline server of ``tickstep local --serve``
(:mod:`.server`), what the API function reads besides the stores (:mod:`.sources`), and the
page's releases to S3 and CloudFront (:mod:`.release`). The page itself is ``frontend/``."""
