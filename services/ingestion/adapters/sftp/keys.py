"""Reading the OpenSSH public keys admins give a login (the KeyReader port, over asyncssh)."""

import asyncssh

from services.ingestion.service_layer.ports import ParsedKey
from services.runtime.errors import InvalidInput

MAX_KEY_TEXT = 16 * 1024
# Keys too weak to accept whatever a client library would allow.
REFUSED_ALGORITHMS = frozenset({"ssh-dss"})
MIN_RSA_BITS = 2048


class OpenSshKeyReader:
    def read(self, text: str) -> ParsedKey:
        line = text.strip()
        if not line or len(line) > MAX_KEY_TEXT or "\n" in line or "\r" in line:
            raise InvalidInput("public_key must be one line of an OpenSSH public key file")
        try:
            key = asyncssh.import_public_key(line)
        except (asyncssh.KeyImportError, ValueError):
            raise InvalidInput(
                "public_key is not an OpenSSH public key (expected e.g. 'ssh-ed25519 AAAA...')"
            ) from None
        algorithm = key.get_algorithm()
        if algorithm in REFUSED_ALGORITHMS:
            raise InvalidInput(f"{algorithm} keys are not accepted")
        if (
            algorithm == "ssh-rsa"
            and getattr(key.pyca_key, "key_size", MIN_RSA_BITS) < MIN_RSA_BITS
        ):
            raise InvalidInput(f"RSA keys need at least {MIN_RSA_BITS} bits")
        comment = key.get_comment() or ""
        key.set_comment(None)
        return ParsedKey(
            algorithm=algorithm,
            fingerprint=key.get_fingerprint("sha256"),
            public_key=key.export_public_key("openssh").decode().strip(),
            comment=comment,
        )
