"""A real OpenLDAP server (Debian's slapd) for the directory tests: loopback only, TLS with a generated CA.

The server is built from a throwaway ``slapd.conf`` and loaded with ``slapadd`` before it starts;
tests change entries over LDAP as the directory's own admin (``ROOT_DN``), as an identity team would.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUFFIX = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root-secret-1"
SERVICE_DN = f"cn=enclave,ou=services,{SUFFIX}"
SERVICE_PASSWORD = "service-secret-1"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")


def slapd_missing() -> str | None:
    """Why the tests cannot start slapd here, or None."""
    for tool in ("slapd", "slapadd"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return f"{tool} is not installed (apt-get install slapd)"
    if not Path("/etc/ldap/schema/core.schema").exists():
        return "OpenLDAP's schema files are missing (/etc/ldap/schema)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for ``localhost`` / 127.0.0.1 signed by it: (ca, cert, key) PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Enclave test directory CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names = x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                         x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(names, critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    paths[2].chmod(0o600)
    return paths


def _person(uid: str, name: str, password: str, extra: str = "") -> str:
    return (f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {name}\nsn: {name.split()[-1]}\n"
            f"mail: {uid}@example.org\nuserPassword: {password}\n{extra}\n")


def _group(name: str, members: list[str]) -> str:
    return f"dn: cn={name},{GROUPS}\nobjectClass: groupOfNames\ncn: {name}\n" + "".join(
        f"member: {m}\n" for m in members) + "\n"


def person_dn(uid: str) -> str:
    """The DN of a person in the test directory."""
    return f"uid={uid},{PEOPLE}"


def group_dn(name: str) -> str:
    """The DN of a group in the test directory."""
    return f"cn={name},{GROUPS}"


PASSWORDS = {"alice": "alice-secret-1", "bob": "bob-secret-1", "carol": "carol-secret-1", "dan": "dan-secret-1"}

SEED = (
    f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n"
    f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n"
    f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n\n"
    f"dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services\n\n"
    f"dn: {SERVICE_DN}\nobjectClass: person\ncn: enclave\nsn: enclave\nuserPassword: {SERVICE_PASSWORD}\n\n"
    + _person("alice", "Alice Archer", PASSWORDS["alice"])
    + _person("bob", "Bob Baker", PASSWORDS["bob"])
    + _person("carol", "Carol Cook", PASSWORDS["carol"], "employeeType: disabled\n")
    + _person("dan", "Dan Dyer", PASSWORDS["dan"])
    # Nested: bob is in Payroll, which is a member of Finance; alice is in Finance directly.
    + _group("Payroll", [person_dn("bob")])
    + _group("Finance", [person_dn("alice"), group_dn("Payroll")])
    + _group("IT Admins", [person_dn("dan")])
)


def _config(root: Path, cert: Path, key: Path, ca: Path) -> str:
    includes = "".join(f"include /etc/ldap/schema/{name}.schema\n" for name in SCHEMAS)
    return f"""{includes}
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {root}/slapd.pid
argsfile {root}/slapd.args
TLSCACertificateFile {ca}
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
database mdb
maxsize 10485760
suffix "{SUFFIX}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PASSWORD}
directory {root}/db
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
"""


@dataclass
class Slapd:
    """A running slapd: its LDAPS and plain ports, its CA, and the process."""

    root: Path
    ca_file: Path
    ldaps_port: int
    ldap_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def ldaps_url(self) -> str:
        """The LDAPS address, by the name on its certificate."""
        return f"ldaps://localhost:{self.ldaps_port}"

    def start(self) -> None:
        """Start the server (again) and wait until it accepts connections."""
        # 127.0.0.2 is on no certificate: a client must refuse it.
        urls = (f"ldaps://127.0.0.1:{self.ldaps_port}/ ldap://127.0.0.1:{self.ldap_port}/ "
                f"ldaps://127.0.0.2:{self.ldaps_port}/")
        self.process = subprocess.Popen(
            [_tool("slapd"), "-f", str(self.root / "slapd.conf"), "-h", urls, "-d", "0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"slapd exited: {self.process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                socket.create_connection(("127.0.0.1", self.ldaps_port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("slapd did not start listening within 20 s")

    def stop(self) -> None:
        """Stop the server (the directory is down until ``start``)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None

    def modify(self, dn: str, changes: dict[str, Any]) -> None:
        """Change an entry as the directory's admin, e.g. ``{"member": [(MODIFY_DELETE, [dn])]}``."""
        import ldap3

        server = ldap3.Server("127.0.0.1", port=self.ldap_port)
        with ldap3.Connection(server, ROOT_DN, ROOT_PASSWORD, auto_bind=True) as connection:
            if not connection.modify(dn, changes):
                raise RuntimeError(f"modify {dn} failed: {connection.result}")

    def add_person(self, uid: str, password: str) -> str:
        """Add a person (no groups) as the directory's admin; returns their DN."""
        import ldap3

        server = ldap3.Server("127.0.0.1", port=self.ldap_port)
        with ldap3.Connection(server, ROOT_DN, ROOT_PASSWORD, auto_bind=True) as connection:
            attributes = {"uid": uid, "cn": uid.title(), "sn": uid.title(), "userPassword": password}
            if not connection.add(person_dn(uid), ["inetOrgPerson"], attributes):
                raise RuntimeError(f"add {uid} failed: {connection.result}")
        return person_dn(uid)

    def delete(self, dn: str) -> None:
        """Remove an entry as the directory's admin."""
        import ldap3

        server = ldap3.Server("127.0.0.1", port=self.ldap_port)
        with ldap3.Connection(server, ROOT_DN, ROOT_PASSWORD, auto_bind=True) as connection:
            if not connection.delete(dn):
                raise RuntimeError(f"delete {dn} failed: {connection.result}")


def _tool(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def build_slapd(root: Path) -> Slapd:
    """Configure and load a directory under ``root`` (started with ``start``)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "db").mkdir()
    ca, cert, key = write_certificates(root)
    (root / "slapd.conf").write_text(_config(root, cert, key, ca))
    (root / "seed.ldif").write_text(SEED)
    subprocess.run([_tool("slapadd"), "-f", str(root / "slapd.conf"), "-l", str(root / "seed.ldif")],
                   check=True, capture_output=True, timeout=60)
    return Slapd(root, ca, _free_port(), _free_port())


def running_slapd(root: Path) -> Iterator[Slapd]:
    """A started directory for a fixture, stopped after; skips the test where slapd is not installed."""
    import pytest

    missing = slapd_missing()
    if missing:
        pytest.skip(missing)
    server = build_slapd(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def directory_settings(server: Slapd, **overrides: Any) -> dict[str, Any]:
    """The ``[directory]`` section an admin would write for this directory."""
    return {"enabled": True, "url": server.ldaps_url, "ca_file": str(server.ca_file), "bind_dn": SERVICE_DN,
            "bind_password": SERVICE_PASSWORD, "user_base": PEOPLE, "group_base": GROUPS,
            "user_filter": "(&(objectClass=inetOrgPerson)(uid={username}))",
            "disabled_filter": "(employeeType=disabled)", "admin_groups": ["IT Admins"],
            "group_map": {"Payroll": "payroll-team"}, "timeout_s": 3, **overrides}
