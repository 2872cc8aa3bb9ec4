"""Client addresses for per-client limits: X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

import ipaddress

import pytest

from chatbot.settings import WebSettings
from chatbot.web.client_address import client_address, limit_key

PROXY = WebSettings(trusted_proxies=["10.0.0.0/8", "fd00::/8"]).trusted_proxies


def test_the_header_is_ignored_without_trusted_proxies() -> None:
    assert client_address("203.0.113.5", "198.51.100.1", ()) == "203.0.113.5"
    # a client talking to us directly cannot claim another address either
    assert client_address("203.0.113.5", "198.51.100.1", PROXY) == "203.0.113.5"


def test_the_rightmost_untrusted_hop_behind_a_trusted_proxy_is_the_client() -> None:
    assert client_address("10.0.0.2", "198.51.100.1", PROXY) == "198.51.100.1"
    # the client prepended a fake hop; its proxy appended the real address
    assert client_address("10.0.0.2", "1.2.3.4, 198.51.100.1", PROXY) == "198.51.100.1"
    # two proxies in a row are skipped
    assert client_address("10.0.0.2", "198.51.100.1, 10.0.0.9", PROXY) == "198.51.100.1"
    # only proxies, or garbage where the client should be: the peer
    assert client_address("10.0.0.2", "10.0.0.3", PROXY) == "10.0.0.2"
    assert client_address("10.0.0.2", "not-an-ip", PROXY) == "10.0.0.2"
    assert client_address("10.0.0.2", "", PROXY) == "10.0.0.2"


def test_limits_count_ipv6_by_slash_64() -> None:
    assert limit_key("2001:db8:1:2:aaaa::1") == limit_key("2001:db8:1:2:bbbb::9")
    assert limit_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert limit_key("2001:db8:1:3::1") != limit_key("2001:db8:1:2::1")
    assert limit_key("::ffff:198.51.100.7") == "198.51.100.7"
    assert limit_key("198.51.100.7") == "198.51.100.7"
    assert limit_key("testclient") == "testclient"


def test_bad_trusted_proxies_are_a_settings_error() -> None:
    parsed = WebSettings(trusted_proxies=[" 10.0.0.0/8 ", "10.1.2.3/16"]).trusted_proxies
    assert parsed == (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("10.1.0.0/16"))
    with pytest.raises(ValueError, match=r"not an IP address or network: 'proxy\.local'"):
        WebSettings(trusted_proxies=["proxy.local"])
    with pytest.raises(ValueError, match="not an IP"):
        WebSettings(trusted_proxies=["10.0.0.0/33"])
