"""Linux XFRM netlink messages (include/uapi/linux/xfrm.h) on pyroute2's marshalling classes.

pyroute2 has no XFRM state/policy messages, so they are defined here as `nlmsg` / `nla`
subclasses. The C structs nest (an SA holds a selector, an id, lifetimes...); their fields
are laid out flat with a prefix per member (`sel_daddr`, `id_spi`, `lft_soft_byte_limit`)
and explicit padding, so every message has exactly the size and layout of the kernel's
struct on x86-64 (`SIZES` below is checked by the tests). Network-order fields (SPI,
ports) use `>` formats; addresses are 16 raw octets (`xfrm_address_t`), see `addr_bytes`.

Only data and codecs live here; xfrm.py builds and sends the messages.
"""

from __future__ import annotations

import ipaddress
import socket
import struct

from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST, nla, nlmsg

# Message types (XFRM_MSG_*)
XFRM_MSG_NEWSA = 0x10
XFRM_MSG_DELSA = 0x11
XFRM_MSG_GETSA = 0x12
XFRM_MSG_NEWPOLICY = 0x13
XFRM_MSG_DELPOLICY = 0x14
XFRM_MSG_GETPOLICY = 0x15
XFRM_MSG_ALLOCSPI = 0x16
XFRM_MSG_ACQUIRE = 0x17
XFRM_MSG_EXPIRE = 0x18
XFRM_MSG_UPDPOLICY = 0x19
XFRM_MSG_UPDSA = 0x1A
XFRM_MSG_POLEXPIRE = 0x1B
XFRM_MSG_FLUSHSA = 0x1C
XFRM_MSG_FLUSHPOLICY = 0x1D

# Multicast groups (enum xfrm_nlgroups) for NETLINK_ADD_MEMBERSHIP
XFRMNLGRP_ACQUIRE = 1
XFRMNLGRP_EXPIRE = 2

# Attributes (enum xfrm_attr_type_t)
XFRMA_ALG_AUTH = 1
XFRMA_ALG_CRYPT = 2
XFRMA_ENCAP = 4
XFRMA_TMPL = 5
XFRMA_SA = 6
XFRMA_POLICY = 7
XFRMA_LTIME_VAL = 9
XFRMA_REPLAY_VAL = 10
XFRMA_SRCADDR = 13
XFRMA_POLICY_TYPE = 16
XFRMA_ALG_AEAD = 18
XFRMA_ALG_AUTH_TRUNC = 20
XFRMA_MARK = 21
XFRMA_REPLAY_ESN_VAL = 23
XFRMA_SA_EXTRA_FLAGS = 24
XFRMA_IF_ID = 31

XFRM_INF = 0xFFFFFFFFFFFFFFFF  # "no limit" for byte and packet counts

# xfrm_usersa_info.flags
XFRM_STATE_NOECN = 1
XFRM_STATE_DECAP_DSCP = 2
XFRM_STATE_NOPMTUDISC = 4
XFRM_STATE_WILDRECV = 8
XFRM_STATE_ICMP = 16
XFRM_STATE_AF_UNSPEC = 32
XFRM_STATE_ALIGN4 = 64
XFRM_STATE_ESN = 128

XFRM_MODE_TRANSPORT = 0
XFRM_MODE_TUNNEL = 1

XFRM_POLICY_IN = 0
XFRM_POLICY_OUT = 1
XFRM_POLICY_FWD = 2
XFRM_POLICY_ALLOW = 0
XFRM_POLICY_BLOCK = 1
XFRM_POLICY_TYPE_MAIN = 0

UDP_ENCAP = 100  # setsockopt(SOL_UDP, UDP_ENCAP, ...)
UDP_ENCAP_ESPINUDP = 2  # RFC 3948
IP_XFRM_POLICY = 17
IPV6_XFRM_POLICY = 35

IPPROTO_ESP = 50
IPPROTO_AH = 51
IPPROTO_COMP = 108


def addr_bytes(address) -> bytes:
    """xfrm_address_t: an IPv4 address in the first 4 of 16 octets, IPv6 in all 16."""
    if address is None:
        return bytes(16)
    packed = ipaddress.ip_address(address).packed
    return packed + bytes(16 - len(packed))


def addr_from(raw: bytes, family: int):
    """The address in an xfrm_address_t, for AF_INET / AF_INET6 (None for AF_UNSPEC)."""
    if family == socket.AF_INET:
        return ipaddress.IPv4Address(raw[:4])
    if family == socket.AF_INET6:
        return ipaddress.IPv6Address(raw[:16])
    return None


def family_of(address) -> int:
    return socket.AF_INET if ipaddress.ip_address(address).version == 4 else socket.AF_INET6


def _member(prefix, fields):
    return tuple((f"{prefix}{name}", fmt) for name, fmt in fields)


# struct xfrm_selector (56 octets)
SELECTOR = (
    ("daddr", "16s"), ("saddr", "16s"),
    ("dport", ">H"), ("dport_mask", ">H"), ("sport", ">H"), ("sport_mask", ">H"),
    ("family", "H"), ("prefixlen_d", "B"), ("prefixlen_s", "B"), ("proto", "B"),
    ("_pad_sel", "3x"), ("ifindex", "i"), ("user", "I"),
)
# struct xfrm_id (24)
ID = (("daddr", "16s"), ("spi", ">I"), ("proto", "B"), ("_pad_id", "3x"))
# struct xfrm_lifetime_cfg (64)
LIFETIME_CFG = tuple((name, "Q") for name in (
    "soft_byte_limit", "hard_byte_limit", "soft_packet_limit", "hard_packet_limit",
    "soft_add_expires_seconds", "hard_add_expires_seconds",
    "soft_use_expires_seconds", "hard_use_expires_seconds",
))
# struct xfrm_lifetime_cur (32)
LIFETIME_CUR = (("bytes", "Q"), ("packets", "Q"), ("add_time", "Q"), ("use_time", "Q"))
# struct xfrm_stats (12)
STATS = (("replay_window", "I"), ("replay", "I"), ("integrity_failed", "I"))

USERSA_INFO = (
    _member("sel_", SELECTOR) + _member("id_", ID) + (("saddr", "16s"),)
    + _member("lft_", LIFETIME_CFG) + _member("curlft_", LIFETIME_CUR) + _member("stats_", STATS)
    + (("seq", "I"), ("reqid", "I"), ("family", "H"), ("mode", "B"), ("replay_window", "B"),
       ("flags", "B"), ("_pad_sa", "7x"))
)
USERPOLICY_INFO = (
    _member("sel_", SELECTOR) + _member("lft_", LIFETIME_CFG) + _member("curlft_", LIFETIME_CUR)
    + (("priority", "I"), ("index", "I"), ("dir", "B"), ("action", "B"), ("flags", "B"),
       ("share", "B"), ("_pad_pol", "4x"))
)
USER_TMPL = (
    _member("id_", ID) + (("family", "H"), ("_pad_t1", "2x"), ("saddr", "16s"), ("reqid", "I"),
                          ("mode", "B"), ("share", "B"), ("optional", "B"), ("_pad_t2", "x"),
                          ("aalgos", "I"), ("ealgos", "I"), ("calgos", "I"))
)


def struct_size(fields) -> int:
    return sum(struct.calcsize(fmt) for _, fmt in fields)


def _defaults(fields) -> dict:
    """Unset fields encode as zero: octet strings need b"" rather than 0."""
    return {name: b"" for name, fmt in fields if fmt.endswith("s")}


class _xfrm_nla(nla):
    """A fixed struct NLA, optionally followed by variable octets (`tail`)."""

    tail = None

    def ft_encode(self, offset):
        offset, diff = nla.ft_encode(self, offset)
        if self.tail is None:
            return offset, diff
        data = bytes(self.get(self.tail) or b"")
        self.data.extend(data)
        offset += len(data)
        pad = (4 - offset % 4) % 4
        self.data.extend(bytes(pad))
        return offset + pad, pad

    def ft_decode(self, offset):
        fixed = struct_size(self.fields)
        if self.length - 4 < fixed:
            raise ValueError(f"{type(self).__name__}: {self.length - 4} octets, need {fixed}")
        nla.ft_decode(self, offset)
        if self.tail is not None:
            self[self.tail] = bytes(self.data[offset + fixed:self.offset + self.length])


class _xfrm_attrs:
    """The XFRMA_* attributes, shared by every XFRM message."""

    nla_map = (
        (XFRMA_ALG_AUTH, "XFRMA_ALG_AUTH", "xfrm_algo"),
        (XFRMA_ALG_CRYPT, "XFRMA_ALG_CRYPT", "xfrm_algo"),
        (XFRMA_ENCAP, "XFRMA_ENCAP", "xfrm_encap_tmpl"),
        (XFRMA_TMPL, "XFRMA_TMPL", "xfrm_user_tmpls"),
        (XFRMA_LTIME_VAL, "XFRMA_LTIME_VAL", "xfrm_lifetime_cur"),
        (XFRMA_REPLAY_VAL, "XFRMA_REPLAY_VAL", "xfrm_replay_state"),
        (XFRMA_SRCADDR, "XFRMA_SRCADDR", "xfrm_address"),
        (XFRMA_POLICY_TYPE, "XFRMA_POLICY_TYPE", "xfrm_userpolicy_type"),
        (XFRMA_ALG_AEAD, "XFRMA_ALG_AEAD", "xfrm_algo_aead"),
        (XFRMA_ALG_AUTH_TRUNC, "XFRMA_ALG_AUTH_TRUNC", "xfrm_algo_auth"),
        (XFRMA_MARK, "XFRMA_MARK", "xfrm_mark"),
        (XFRMA_REPLAY_ESN_VAL, "XFRMA_REPLAY_ESN_VAL", "xfrm_replay_state_esn"),
        (XFRMA_SA_EXTRA_FLAGS, "XFRMA_SA_EXTRA_FLAGS", "uint32"),
        (XFRMA_IF_ID, "XFRMA_IF_ID", "uint32"),
    )

    class xfrm_algo(_xfrm_nla):
        """struct xfrm_algo: name, key length in bits, key."""

        fields = (("alg_name", "64s"), ("alg_key_len", "I"))
        tail = "alg_key"

    class xfrm_algo_auth(_xfrm_nla):
        """struct xfrm_algo_auth: XFRMA_ALG_AUTH_TRUNC with the ICV length in bits."""

        fields = (("alg_name", "64s"), ("alg_key_len", "I"), ("alg_trunc_len", "I"))
        tail = "alg_key"

    class xfrm_algo_aead(_xfrm_nla):
        """struct xfrm_algo_aead: the key includes the salt; ICV length in bits."""

        fields = (("alg_name", "64s"), ("alg_key_len", "I"), ("alg_icv_len", "I"))
        tail = "alg_key"

    class xfrm_encap_tmpl(_xfrm_nla):
        fields = (("encap_type", "H"), ("encap_sport", ">H"), ("encap_dport", ">H"),
                  ("_pad_e", "2x"), ("encap_oa", "16s"))

    class xfrm_replay_state(_xfrm_nla):
        fields = (("oseq", "I"), ("seq", "I"), ("bitmap", "I"))

    class xfrm_replay_state_esn(_xfrm_nla):
        """struct xfrm_replay_state_esn; `bmp` (bmp_len 32-bit words) may be left out."""

        fields = (("bmp_len", "I"), ("oseq", "I"), ("seq", "I"), ("oseq_hi", "I"),
                  ("seq_hi", "I"), ("replay_window", "I"))
        tail = "bmp"

    class xfrm_lifetime_cur(_xfrm_nla):
        fields = LIFETIME_CUR

    class xfrm_address(_xfrm_nla):
        fields = (("addr", "16s"),)

    class xfrm_userpolicy_type(_xfrm_nla):
        fields = (("type", "B"), ("_pad_pt", "x"), ("reserved1", "H"), ("reserved2", "B"),
                  ("_pad_pt2", "x"))

    class xfrm_mark(_xfrm_nla):
        fields = (("v", "I"), ("m", "I"))

    class xfrm_user_tmpls(_xfrm_nla):
        """XFRMA_TMPL: one or more struct xfrm_user_tmpl back to back, as a list of dicts."""

        fields = ()
        _size = struct_size(USER_TMPL)

        def ft_encode(self, offset):
            for tmpl in self.get("templates", ()):
                for name, fmt in USER_TMPL:
                    value = tmpl.get(name, b"" if fmt.endswith("s") else 0)
                    offset = self.encode_field(fmt, self.data, offset, value)
            return offset, 0

        def ft_decode(self, offset):
            end = self.offset + self.length
            templates = []
            while offset + self._size <= end:
                tmpl = {}
                for name, fmt in USER_TMPL:
                    value, offset = self.decode_field(fmt, self.data, offset)
                    if not name.startswith("_"):
                        tmpl[name] = value
                templates.append(tmpl)
            self["templates"] = templates


class _xfrm_msg(_xfrm_attrs, nlmsg):
    pass


class xfrm_usersa_info(_xfrm_msg):
    """NEWSA / UPDSA / GETSA replies and dumps."""

    fields = USERSA_INFO


class xfrm_usersa_id(_xfrm_msg):
    """DELSA / GETSA: (daddr, spi, family, proto), plus XFRMA_SRCADDR."""

    fields = (("daddr", "16s"), ("spi", ">I"), ("family", "H"), ("proto", "B"), ("_pad_u", "x"))


class xfrm_userspi_info(_xfrm_msg):
    """ALLOCSPI: a larval SA and the SPI range to draw from."""

    fields = _member("info_", USERSA_INFO) + (("min", "I"), ("max", "I"))


class xfrm_userpolicy_info(_xfrm_msg):
    """NEWPOLICY / UPDPOLICY (with XFRMA_TMPL), GETPOLICY replies and dumps."""

    fields = USERPOLICY_INFO


class xfrm_userpolicy_id(_xfrm_msg):
    """DELPOLICY / GETPOLICY: the selector and direction (or the index)."""

    fields = _member("sel_", SELECTOR) + (("index", "I"), ("dir", "B"), ("_pad_pi", "3x"))


class xfrm_user_expire(_xfrm_msg):
    """EXPIRE: the state that reached a soft or hard limit."""

    fields = _member("state_", USERSA_INFO) + (("hard", "B"), ("_pad_x", "7x"))


class xfrm_user_acquire(_xfrm_msg):
    """ACQUIRE: traffic hit a policy whose template has no SA; XFRMA_TMPL follows."""

    fields = (
        _member("id_", ID) + (("saddr", "16s"),) + _member("sel_", SELECTOR)
        + _member("policy_", USERPOLICY_INFO)
        + (("aalgos", "I"), ("ealgos", "I"), ("calgos", "I"), ("seq", "I"))
    )


class xfrm_user_polexpire(_xfrm_msg):
    fields = _member("pol_", USERPOLICY_INFO) + (("hard", "B"), ("_pad_px", "7x"))


class xfrm_dump_request(_xfrm_msg):
    """A GETSA / GETPOLICY dump request: the header alone (the kernel reads no body)."""

    fields = ()


for _cls in (xfrm_usersa_info, xfrm_usersa_id, xfrm_userspi_info, xfrm_userpolicy_info,
             xfrm_userpolicy_id, xfrm_user_expire, xfrm_user_acquire, xfrm_user_polexpire,
             _xfrm_attrs.xfrm_algo, _xfrm_attrs.xfrm_algo_auth, _xfrm_attrs.xfrm_algo_aead,
             _xfrm_attrs.xfrm_encap_tmpl, _xfrm_attrs.xfrm_address):
    _cls.defaults = _defaults(_cls.fields)

#: sizeof() of each struct on x86-64, from include/uapi/linux/xfrm.h
SIZES = {
    xfrm_usersa_info: 224,
    xfrm_usersa_id: 24,
    xfrm_userspi_info: 232,
    xfrm_userpolicy_info: 168,
    xfrm_userpolicy_id: 64,
    xfrm_user_expire: 232,
    xfrm_user_acquire: 280,
    xfrm_user_polexpire: 176,
}

#: message type -> class, for what the kernel sends us
MESSAGE_CLASSES = {
    XFRM_MSG_NEWSA: xfrm_usersa_info,
    XFRM_MSG_UPDSA: xfrm_usersa_info,
    XFRM_MSG_NEWPOLICY: xfrm_userpolicy_info,
    XFRM_MSG_UPDPOLICY: xfrm_userpolicy_info,
    XFRM_MSG_EXPIRE: xfrm_user_expire,
    XFRM_MSG_ACQUIRE: xfrm_user_acquire,
    XFRM_MSG_POLEXPIRE: xfrm_user_polexpire,
}


def build(cls, msg_type: int, fields: dict, attrs=(), flags=NLM_F_REQUEST | NLM_F_ACK, seq=0) -> bytes:
    """Encode one request: header, the struct (missing fields are 0), the attributes."""
    msg = cls()
    msg["header"] = {"type": msg_type, "flags": flags, "sequence_number": seq, "pid": 0}
    msg.update(fields)
    msg["attrs"] = list(attrs)
    msg.encode()
    return bytes(msg.data)


def struct_bytes(cls, fields: dict) -> bytes:
    """The struct alone, without the netlink header (setsockopt payloads)."""
    return build(cls, 0, fields, flags=0)[16:]
