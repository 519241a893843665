"""Where webhooks may be sent: the URL rules and the address check against SSRF.

A webhook URL is chosen by a client, and the worker POSTs to it from inside the
network: unchecked, a subscription to ``http://169.254.169.254/`` or
``http://mongodb:27017/`` would make Pépite probe its own infrastructure. So the host
is resolved and every address it resolves to must be public, unless an operator
allowed the host or the address in ``PEPITE_WEBHOOK_ALLOWED_TARGETS``. The check runs
when a subscription is saved and again before every attempt (DNS answers change), and
the attempt connects to an address that passed it, so a second lookup between the
check and the connection cannot swap in another one.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

MAX_URL_CHARS = 2000

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_ALLOWLIST_SETTING = "PEPITE_WEBHOOK_ALLOWED_TARGETS"
#: NAT64 (RFC 6052): the last 32 bits are an IPv4 address the gateway connects to.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
#: Checked in this order, so 127.0.0.1 is called loopback rather than private.
_FORBIDDEN_KINDS = (
    ("is_unspecified", "unspecified"),
    ("is_loopback", "loopback"),
    ("is_link_local", "link-local"),
    ("is_multicast", "multicast"),
    ("is_private", "private"),
    ("is_reserved", "reserved"),
)


class TargetRefusedError(Exception):
    """A webhook URL whose host webhooks may not reach (or that does not resolve)."""


def check_url(url: str) -> str:
    """Check the form of a webhook URL; return it unchanged.

    Raises:
        ValueError: not an absolute http(s) URL with a host, longer than
            :data:`MAX_URL_CHARS`, with credentials, or with an invalid port.
    """
    if len(url) > MAX_URL_CHARS:
        raise ValueError(f"the URL is longer than {MAX_URL_CHARS} characters")
    if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        raise ValueError("the URL may not contain spaces or control characters")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"not a valid URL: {exc}") from None
    if parsed.scheme not in {"http", "https"}:
        raise ValueError("the URL must start with http:// or https://")
    if not parsed.host:
        raise ValueError("the URL has no host")
    if parsed.userinfo:
        # Credentials in a URL end up in logs and delivery listings; receivers verify
        # the signature instead.
        raise ValueError("the URL may not carry credentials (user:password@)")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise ValueError(f"invalid port {parsed.port}")
    return url


@dataclass(frozen=True)
class AllowedTargets:
    """Hosts and networks webhooks may reach although they are not public.

    Entries are host names (``hooks.internal``), wildcard domains (``*.internal``: any
    host below it), addresses (``127.0.0.1``, ``::1``) or networks (``10.0.0.0/8``).
    """

    hosts: frozenset[str] = frozenset()
    domains: tuple[str, ...] = ()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowedTargets:
        hosts: set[str] = set()
        domains: list[str] = []
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip().lower().rstrip(".").removeprefix("[").replace("]", "", 1)
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            if entry.startswith("*."):
                domains.append(entry[1:])
            else:
                hosts.add(entry)
        return cls(frozenset(hosts), tuple(domains), tuple(networks))

    def allows_host(self, host: str) -> bool:
        name = _normal_host(host)
        return name in self.hosts or any(name.endswith(domain) for domain in self.domains)

    def allows_address(self, address: IPAddress) -> bool:
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            # ::ffff:127.0.0.1 is 127.0.0.1 by another name.
            candidates.append(address.ipv4_mapped)
        return any(
            candidate.version == network.version and candidate in network
            for candidate in candidates
            for network in self.networks
        )


def forbidden_kind(address: IPAddress) -> str | None:
    """What kind of non-public address ``address`` is (e.g. ``"loopback"``), or None.

    IPv6 addresses that carry an IPv4 address (IPv4-mapped, 6to4, Teredo, NAT64) are
    judged by the IPv4 address too: ``::ffff:127.0.0.1`` reaches the local host.
    """
    if isinstance(address, ipaddress.IPv6Address):
        for embedded in _embedded_ipv4(address):
            kind = forbidden_kind(embedded)
            if kind is not None:
                return f"{kind}: IPv4 {embedded} inside"
    for flag, kind in _FORBIDDEN_KINDS:
        if getattr(address, flag):
            return kind
    if not address.is_global:
        # E.g. 100.64.0.0/10, the carrier-grade NAT range: not private, not public either.
        return "non-public"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.append(address.teredo[1])
    if address in _NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def _normal_host(host: str) -> str:
    return host.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")


def _parse_address(text: str) -> IPAddress | None:
    try:
        # A link-local IPv6 answer may carry its interface ("fe80::1%eth0").
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


async def resolve(host: str, port: int, *, timeout_s: float) -> list[IPAddress]:
    """The addresses ``host`` resolves to, in the resolver's order, without duplicates.

    Raises:
        TargetRefusedError: the host does not resolve (in time).
    """
    literal = _parse_address(_normal_host(host))
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP),
            timeout=timeout_s,
        )
    except socket.gaierror as exc:
        raise TargetRefusedError(f"host {host!r} does not resolve ({exc.strerror})") from None
    except TimeoutError:
        raise TargetRefusedError(f"host {host!r} did not resolve within {timeout_s:g} s") from None
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = _parse_address(str(sockaddr[0]))
        if address is not None and address not in addresses:
            addresses.append(address)
    if not addresses:
        raise TargetRefusedError(f"host {host!r} does not resolve to any IP address")
    return addresses


def default_port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


async def checked_addresses(
    url: httpx.URL, allowed: AllowedTargets, *, timeout_s: float
) -> list[IPAddress]:
    """Resolve the URL's host and return its addresses if webhooks may reach all of them.

    Every address must be public or allowed: a host answering with one public and one
    private address could otherwise be reached on the private one. A host named in
    the allowlist may resolve to anything.

    Raises:
        TargetRefusedError: the host does not resolve, or an address is not allowed;
            the message names the address and why.
    """
    host = url.raw_host.decode("ascii")
    addresses = await resolve(host, default_port(url), timeout_s=timeout_s)
    if allowed.allows_host(host):
        return addresses
    for address in addresses:
        kind = forbidden_kind(address)
        if kind is None or allowed.allows_address(address):
            continue
        name = _normal_host(host)
        what = (
            f"{address} is not a public address ({kind})"
            if _parse_address(name) is not None
            else f"host {name!r} resolves to {address}, not a public address ({kind})"
        )
        raise TargetRefusedError(
            f"{what}: webhooks may not target it (an operator can allow it with "
            f"{_ALLOWLIST_SETTING})"
        )
    return addresses
