"""Environments the cases run in: the ``Environment`` protocol, its kinds, and the plumbing that builds them.

Installing pins (``build``, ``installer``), keeping disk in bounds (``space``, ``evict``, ``disk``,
``inodes``, ``uvcache``), reading what an environment holds (``resolved``, ``target``), the package
index (``pkgindex``, ``releases``), locks and the checks that run before anything is installed.
Nothing here knows a command; the flows (``ftcompat.flows``) do.
"""
