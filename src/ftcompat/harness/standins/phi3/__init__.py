"""ftcompat's stand-in for the remote code of microsoft/Phi-3-mini-4k-instruct (files written into model folders)."""
