"""Cross-check with scapy's IKEv2 layer (an independent implementation): what scapy
builds decodes in ours to the same fields, and what we encode parses in scapy with the
same fields."""

import ipaddress

import pytest

from pyiked._fast import wire
from pyiked._fast.notifydata import Redirect
from pyiked.core.iana import GatewayIdType
from pyiked.core.iana import NotifyType as NT

scapy_ikev2 = pytest.importorskip("scapy.contrib.ikev2")
from scapy.contrib.ikev2 import (  # noqa: E402
    ConfigurationAttribute,
    IKEv2,
    IKEv2_AUTH,
    IKEv2_CERT,
    IKEv2_CERTREQ,
    IKEv2_CP,
    IKEv2_Delete,
    IKEv2_EAP,
    IKEv2_Encrypted,
    IKEv2_Encrypted_Fragment,
    IKEv2_IDi,
    IKEv2_IDr,
    IKEv2_KE,
    IKEv2_Nonce,
    IKEv2_Notify,
    IKEv2_Proposal,
    IKEv2_SA,
    IKEv2_Transform,
    IKEv2_TSi,
    IKEv2_TSr,
    IKEv2_VendorID,
    IPv4TrafficSelector,
    IPv6TrafficSelector,
)
from scapy.packet import NoPayload, Raw  # noqa: E402

SPI_I, SPI_R = b"\x11" * 8, b"\x22" * 8


def _chain(first):
    """The layers of a scapy payload chain."""
    out, layer = [], first
    while layer is not None and not isinstance(layer, (NoPayload, Raw)):
        out.append(layer)
        layer = layer.payload
    return out


def _ip(text):
    return ipaddress.ip_address(text).packed


def scapy_fields(pkt):
    """Normalised (kind, fields) of every payload scapy parsed."""
    out = []
    for p in _chain(pkt.payload):
        if isinstance(p, IKEv2_SA):
            props = []
            for prop in _chain(p.prop):
                trans = [(t.transform_type, t.transform_id,
                          t.key_length if t.length > 8 else None) for t in _chain(prop.trans)]
                props.append((prop.proposal, prop.proto, bytes(prop.SPI), trans))
            out.append(("SA", props))
        elif isinstance(p, IKEv2_KE):
            out.append(("KE", p.group, bytes(p.ke)))
        elif isinstance(p, IKEv2_Nonce):
            out.append(("Nonce", bytes(p.nonce)))
        elif isinstance(p, IKEv2_Notify):
            if p.type in (NT.REDIRECT, NT.REDIRECTED_FROM):
                gw = _ip(p.gw_id) if p.gw_id_type in (1, 2) else bytes(p.gw_id)
                nonce = bytes(p.nonce) if p.type == NT.REDIRECT else b""
                data = ("redirect", p.gw_id_type, gw, nonce)
            else:
                data = bytes(p.notify)
            out.append(("Notify", p.type, p.proto or 0, bytes(p.SPI), data))
        elif isinstance(p, (IKEv2_IDi, IKEv2_IDr)):
            ident = _ip(p.ID) if p.IDtype in (1, 5) else bytes(p.ID)
            out.append((type(p).__name__[6:], p.IDtype, ident))
        elif isinstance(p, IKEv2_CERT):
            out.append(("CERT", p.cert_encoding, bytes(p.cert_data)))
        elif isinstance(p, IKEv2_CERTREQ):
            out.append(("CERTREQ", p.cert_encoding, bytes(p.cert_authority)))
        elif isinstance(p, IKEv2_AUTH):
            out.append(("AUTH", p.auth_type, bytes(p.load)))
        elif isinstance(p, IKEv2_Delete):
            out.append(("Delete", p.proto, [bytes(s) for s in p.SPI]))
        elif isinstance(p, IKEv2_VendorID):
            out.append(("VendorID", bytes(p.vendorID)))
        elif isinstance(p, (IKEv2_TSi, IKEv2_TSr)):
            sels = []
            for ts in p.traffic_selector:
                if isinstance(ts, IPv4TrafficSelector):
                    addrs = (_ip(ts.starting_address_v4), _ip(ts.ending_address_v4))
                else:
                    addrs = (_ip(ts.starting_address_v6), _ip(ts.ending_address_v6))
                sels.append((ts.TS_type, ts.IP_protocol_ID, ts.start_port, ts.end_port) + addrs)
            out.append((type(p).__name__[6:], sels))
        elif isinstance(p, IKEv2_CP):
            attrs = [(a.type, _ip(a.value) if isinstance(a.value, str) else bytes(a.value))
                     for a in p.attributes]
            out.append(("CP", p.CFGType, attrs))
        elif isinstance(p, IKEv2_Encrypted_Fragment):
            out.append(("SKF", p.next_payload, p.frag_number, p.frag_total, bytes(p.load)))
        elif isinstance(p, IKEv2_Encrypted):
            out.append(("SK", p.next_payload, bytes(p.load)))
        elif isinstance(p, IKEv2_EAP):
            out.append(("EAP", bytes(p.load)))
        else:
            raise AssertionError(f"unexpected scapy layer {p!r}")
    return out


def our_fields(m):
    out = []
    for p in m.payloads:
        name = type(p).__name__
        if name == "SA":
            out.append(("SA", [(pr.num, pr.protocol_id, pr.spi,
                                [(t.type, t.id, t.key_length) for t in pr.transforms])
                               for pr in p.proposals]))
        elif name == "KE":
            out.append(("KE", p.group, p.data))
        elif name == "Notify":
            data = p.data
            if p.type in (NT.REDIRECT, NT.REDIRECTED_FROM):
                data = ("redirect",) + tuple(p.value)
            out.append(("Notify", p.type, p.protocol_id, p.spi, data))
        elif name in ("IDi", "IDr"):
            out.append((name, p.id_type, p.data))
        elif name in ("CERT", "CERTREQ"):
            out.append((name, p.encoding, p.data))
        elif name == "AUTH":
            out.append(("AUTH", p.method, p.data))
        elif name == "Delete":
            out.append(("Delete", p.protocol_id, p.spis))
        elif name in ("TSi", "TSr"):
            out.append((name, [(s.ts_type, s.ip_protocol, s.start_port, s.end_port,
                                s.start_addr, s.end_addr) for s in p.selectors]))
        elif name == "CP":
            out.append(("CP", p.cfg_type, list(p.attributes)))
        elif name == "SKF":
            out.append(("SKF", p.next_payload, p.fragment_number, p.total_fragments, p.body))
        elif name == "SK":
            out.append(("SK", p.next_payload, p.body))
        else:  # Nonce, VendorID, EAP
            out.append((name, p.data))
    return out


def _scapy_messages():
    sa = IKEv2_SA(prop=IKEv2_Proposal(proposal=1, proto=1, trans_nb=3, trans=(
        IKEv2_Transform(transform_type=1, transform_id=12, length=12, key_length=256)
        / IKEv2_Transform(transform_type=2, transform_id=5)
        / IKEv2_Transform(transform_type=4, transform_id=19)))
        / IKEv2_Proposal(proposal=2, proto=1, trans_nb=2, trans=(
            IKEv2_Transform(transform_type=1, transform_id=20, length=12, key_length=128)
            / IKEv2_Transform(transform_type=4, transform_id=31))))
    init = (IKEv2(init_SPI=SPI_I, resp_SPI=b"\0" * 8, exch_type=34, flags="Initiator")
            / sa / IKEv2_KE(group=19, ke=b"k" * 64) / IKEv2_Nonce(nonce=b"n" * 32)
            / IKEv2_Notify(type=NT.NAT_DETECTION_SOURCE_IP, notify=b"h" * 20)
            / IKEv2_Notify(type=NT.NAT_DETECTION_DESTINATION_IP, notify=b"d" * 20)
            / IKEv2_Notify(type=NT.REDIRECT, gw_id_type=1, gw_id="192.0.2.7", nonce=b"N" * 32)
            / IKEv2_VendorID(vendorID=b"vendor"))
    esp_sa = IKEv2_SA(prop=IKEv2_Proposal(proposal=1, proto=3, SPI=b"\xca\xfe\xba\xbe",
                                          trans_nb=2, trans=(
        IKEv2_Transform(transform_type=1, transform_id=20, length=12, key_length=256)
        / IKEv2_Transform(transform_type=5, transform_id=0))))
    inner = (IKEv2(init_SPI=SPI_I, resp_SPI=SPI_R, exch_type=35, flags="Initiator", id=1)
             / IKEv2_IDi(IDtype=2, ID=b"a.example") / IKEv2_IDr(IDtype=1, ID="192.0.2.1")
             / IKEv2_CERT(cert_encoding=12, cert_data=b"hash-and-url")
             / IKEv2_CERTREQ(cert_encoding=4, cert_authority=b"\x01" * 20)
             / IKEv2_AUTH(auth_type=2, load=b"a" * 32) / esp_sa
             / IKEv2_TSi(traffic_selector=[IPv4TrafficSelector(
                 IP_protocol_ID=6, start_port=0, end_port=65535,
                 starting_address_v4="10.0.0.0", ending_address_v4="10.0.0.255")])
             / IKEv2_TSr(traffic_selector=[IPv6TrafficSelector(
                 length=40, IP_protocol_ID=17, start_port=500, end_port=4500,
                 starting_address_v6="2001:db8::", ending_address_v6="2001:db8::ffff")])
             / IKEv2_CP(CFGType=2, attributes=[
                 ConfigurationAttribute(type=1, value="10.9.0.5"),
                 ConfigurationAttribute(type=25, value=b"example.com")])
             / IKEv2_Notify(proto=3, SPI=b"\x01\x02\x03\x04", type=NT.REKEY_SA)
             # scapy derives SPIsize as the sum of all SPIs: set it (§3.11: 4 for ESP)
             / IKEv2_Delete(proto=3, SPIsize=4, SPI=[b"\xaa" * 4, b"\xbb" * 4], SPInum=2)
             / IKEv2_EAP(load=bytes.fromhex("0201000a01") + b"alice"))
    sk = (IKEv2(init_SPI=SPI_I, resp_SPI=SPI_R, exch_type=35, flags="Response", id=1)
          / IKEv2_Encrypted(next_payload=36, load=bytes(range(80))))
    skf = (IKEv2(init_SPI=SPI_I, resp_SPI=SPI_R, exch_type=35, flags="Initiator", id=1)
           / IKEv2_Encrypted_Fragment(next_payload=35, frag_number=1, frag_total=2,
                                      load=bytes(range(60))))
    return {"init": init, "inner": inner, "sk": sk, "skf": skf}


@pytest.mark.parametrize("name", ["init", "inner", "sk", "skf"])
def test_scapy_built_messages_decode_in_ours(name):
    pkt = _scapy_messages()[name]
    raw = bytes(pkt)
    m = wire.decode(raw)
    assert our_fields(m) == scapy_fields(IKEv2(raw))
    assert (m.spi_i, m.exchange_type, m.message_id) == (pkt.init_SPI, pkt.exch_type, pkt.id)
    assert wire.encode(m) == raw


def test_our_messages_parse_in_scapy():
    payloads = [
        wire.SA([wire.Proposal(1, 1, b"", [wire.Transform(1, 12, 128), wire.Transform(3, 12),
                                          wire.Transform(2, 5), wire.Transform(4, 14)]),
                 wire.Proposal(2, 1, b"", [wire.Transform(1, 28), wire.Transform(2, 7),
                                          wire.Transform(4, 31)])]),
        wire.KE(14, bytes(range(256))),
        wire.Nonce(b"\x42" * 48),
        wire.Notify(NT.COOKIE, b"c" * 16),
        wire.Notify.build(NT.REDIRECT, Redirect(GatewayIdType.IPV6, _ip("2001:db8::9"), b"n" * 16)),
        wire.Notify.build(NT.REDIRECTED_FROM, Redirect(GatewayIdType.FQDN, b"gw.example")),
        wire.Notify(NT.REKEY_SA, b"", 3, b"\x0a\x0b\x0c\x0d"),
        wire.IDi(2, b"client.example"), wire.IDr(1, _ip("198.51.100.3")),
        wire.CERT(12, b"url"), wire.CERTREQ(4, b"\x07" * 40), wire.AUTH(14, b"s" * 70),
        wire.Delete(3, [b"\x01\x01\x01\x01"]), wire.Delete(1, []), wire.VendorID(b"pyiked"),
        wire.TSi([wire.TrafficSelector(7, 0, 0, 65535, _ip("10.1.0.0"), _ip("10.1.255.255")),
                  wire.TrafficSelector(8, 58, 0, 65535, _ip("fd00::"), _ip("fd00::ff"))]),
        wire.TSr([wire.TrafficSelector(7, 17, 53, 53, _ip("192.0.2.53"), _ip("192.0.2.53"))]),
        wire.CP(2, [(1, _ip("10.2.0.9")), (3, _ip("10.2.0.1")), (7, b"pyiked 0.1")]),
        wire.EAP.build(1, 7, 1),
    ]
    for tail in ([], [wire.SK(41, bytes(64))], [wire.SKF(0, 2, 2, bytes(40))]):
        m = wire.Message(SPI_I, SPI_R, 35, 0x08, 1, payloads + tail)
        raw = wire.encode(m)
        pkt = IKEv2(raw)
        assert (pkt.init_SPI, pkt.resp_SPI, pkt.exch_type, pkt.id, pkt.length) == (
            SPI_I, SPI_R, 35, 1, len(raw))
        assert scapy_fields(pkt) == our_fields(m)
