"""Operating a deployed stack: releases, deploy, rollback, validation and health checks.

``deployment/scripts/*.sh`` and ``deployment/tests/health-checks.sh`` are thin wrappers over
``tickstep deploy|rollback|validate|health-checks`` (``operations.cli``). Every step prints what
it does; every check is named, with pass or fail and the reason.
"""
