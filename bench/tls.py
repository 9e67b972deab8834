"""A throw-away certificate chain shaped like a public one: root CA → intermediate → leaf.

What a real ingest endpoint sends in its handshake is the leaf and the intermediate (RSA 2048, as
most public and cloud load-balancer certificates are), with the extensions such certificates carry:
names, key usages, authority information access, CRL distribution point, policies, and a signed
certificate timestamp list of the usual size (two SCTs, here opaque bytes). The agent trusts the root
only (``[sync] ca_file``), as it trusts a public root from its CA bundle.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

SCT_LIST = ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
SCT_LIST_BYTES = 240  # two SCTs with their length prefixes, as in a public leaf
DV_POLICY = ObjectIdentifier("2.23.140.1.2.1")


@dataclass(frozen=True)
class Chain:
    ca_file: Path  # the root, for the client's trust store
    cert_file: Path  # leaf + intermediate, what the server sends
    key_file: Path  # the leaf's key
    chain_bytes: int  # DER size of leaf + intermediate


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Pager Edge Bench Trust"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_chain(directory: Path, host: str = "localhost") -> Chain:
    """Write root.pem, chain.pem (leaf + intermediate) and leaf.key under `directory`."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    root_key, mid_key, leaf_key = _key(), _key(), _key()
    root_name, mid_name = _name("Pager Edge Bench Root X1"), _name("Pager Edge Bench R3")

    def ca(
        subject: x509.Name, key: rsa.RSAPrivateKey, issuer: x509.Name, signer: rsa.RSAPrivateKey
    ) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1800))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(signer, hashes.SHA256())
        )

    root = ca(root_name, root_key, root_name, root_key)
    mid = ca(mid_name, mid_key, root_name, root_key)
    try:
        san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        san = x509.DNSName(host)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(mid_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, True, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(mid_key.public_key()), False
        )
        .add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        x509.oid.AuthorityInformationAccessOID.OCSP,
                        x509.UniformResourceIdentifier("http://r3.o.bench-trust.invalid"),
                    ),
                    x509.AccessDescription(
                        x509.oid.AuthorityInformationAccessOID.CA_ISSUERS,
                        x509.UniformResourceIdentifier("http://r3.i.bench-trust.invalid/"),
                    ),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        [x509.UniformResourceIdentifier("http://r3.c.bench-trust.invalid/12.crl")],
                        None,
                        None,
                        None,
                    )
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(DV_POLICY, None)]), critical=False
        )
        .add_extension(
            x509.UnrecognizedExtension(SCT_LIST, b"\x04\x81\xf0" + os.urandom(SCT_LIST_BYTES)),
            critical=False,
        )
        .sign(mid_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    ca_file, cert_file, key_file = (
        directory / "root.pem",
        directory / "chain.pem",
        directory / "leaf.key",
    )
    ca_file.write_bytes(root.public_bytes(pem))
    cert_file.write_bytes(leaf.public_bytes(pem) + mid.public_bytes(pem))
    key_file.write_bytes(
        leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_file.chmod(0o600)
    der = serialization.Encoding.DER
    return Chain(
        ca_file, cert_file, key_file, len(leaf.public_bytes(der)) + len(mid.public_bytes(der))
    )
