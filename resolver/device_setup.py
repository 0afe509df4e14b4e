"""What a family or school installs on one device: Android Private DNS name, DoH URL, Apple profile."""

from __future__ import annotations

import plistlib
import re
import uuid
from dataclasses import dataclass

from .encrypted_config import DEVICE_ID, EncryptedSettings


@dataclass(frozen=True, slots=True)
class DeviceSetup:
    device: str
    private_dns: str  # Android: Settings > Network > Private DNS > hostname
    doh_url: str  # Chrome/Edge DnsOverHttpsTemplates, Apple ServerURL, Windows 11


def setup_for(device: str, settings: EncryptedSettings) -> DeviceSetup:
    """The hostname and URL that name ``device`` to this resolver."""
    name = settings.tls.server_name
    ports = {port for _, port in settings.listen_https}
    # Behind NAT the public port is usually 443; only a single other port is shown.
    port = f":{ports.pop()}" if len(ports) == 1 and 443 not in ports else ""
    return DeviceSetup(device, f"{device}.{name}", f"https://{name}{port}/dns-query/{device}")


def mobileconfig(setup: DeviceSetup) -> bytes:
    """An Apple configuration profile (DNSSettings payload, DoH) for iPhone, iPad and Mac."""
    ident = "vn.lachan.dns." + setup.private_dns
    stable = uuid.uuid5(uuid.NAMESPACE_DNS, setup.private_dns)  # reinstalling replaces, not adds
    settings = {
        "PayloadType": "com.apple.dnsSettings.managed",
        "PayloadVersion": 1,
        "PayloadIdentifier": ident + ".dns",
        "PayloadUUID": str(uuid.uuid5(stable, "dns")).upper(),
        "PayloadDisplayName": f"DNS lá chắn ({setup.device})",
        "DNSSettings": {"DNSProtocol": "HTTPS", "ServerURL": setup.doh_url},
    }
    profile = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": ident,
        "PayloadUUID": str(stable).upper(),
        "PayloadDisplayName": f"lachan – DNS bảo vệ trẻ em ({setup.device})",
        "PayloadDescription": (
            "Dùng DNS lá chắn (lachan) qua HTTPS cho thiết bị này. "
            "Uses lachan's filtering DNS over HTTPS on this device."
        ),
        "PayloadContent": [settings],
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML)


def add_to_config(text: str, device: str, profile: str) -> str:
    """The config text with ``device: profile`` under ``devices:`` (other lines untouched).

    Raises ValueError when the file's ``devices`` is written in a way this cannot extend
    (a flow mapping such as ``devices: {a: b}``): the operator adds the line by hand then.
    """
    if not DEVICE_ID.match(device):
        raise ValueError(f"{device!r}: a device ID is one lower-case DNS label (a-z, 0-9, -)")
    entry = f"  {device}: {profile}\n"
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if re.match(r"^devices\s*:\s*(#.*)?$", line):
            lines.insert(index + 1, entry)
            return "".join(lines)
        if re.match(r"^devices\s*:", line):
            raise ValueError("devices is written inline; add the device there by hand")
    ending = "" if not text or text.endswith("\n") else "\n"
    return text + ending + "devices:\n" + entry
