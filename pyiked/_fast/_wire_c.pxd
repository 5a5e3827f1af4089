# Types for compiling _wire_py.py a second time as _wire_c (Cython pure-Python mode).
# The payload classes become cdef classes with C fields; the decoder reads the input
# through a const pointer (`p`); the encoder writes through a pointer (`w`) into one
# preallocated, zeroed buffer: a bytearray in the pure twin, the fresh bytes object it
# returns here (see _buffer). Every read is bounds-checked in the Python source itself,
# so the pure twin raises IndexError (a test failure) where a bad check would read out
# of bounds here.

cimport cython

ctypedef const unsigned char *cbuf
ctypedef unsigned char *wbuf

cdef int _SA, _KE, _IDI, _IDR, _CERT, _CERTREQ, _AUTH, _NONCE, _N, _D, _V
cdef int _TSI, _TSR, _SK, _CP, _EAP, _SKF
cdef Py_ssize_t _HEADER_LEN
cdef int _FLAG_MASK, _RESPONSE, _INITIATOR, _CRITICAL
cdef bytes _ZERO_SPI
cdef bint _COMPILED
cdef Py_ssize_t _MAX_PAYLOADS, _MAX_PROPOSALS, _MAX_ATTRIBUTES, _MAX_CP_ATTRIBUTES


cdef class _Record:
    pass

cdef class Transform(_Record):
    cdef public int type, id
    cdef public object key_length
    cdef public tuple attributes

cdef class Proposal(_Record):
    cdef public int num, protocol_id
    cdef public bytes spi
    cdef public list transforms

cdef class SA(_Record):
    cdef public list proposals

cdef class KE(_Record):
    cdef public int group
    cdef public bytes data

cdef class _ID(_Record):
    cdef public int id_type
    cdef public bytes data

cdef class IDi(_ID):
    pass

cdef class IDr(_ID):
    pass

cdef class _Cert(_Record):
    cdef public int encoding
    cdef public bytes data

cdef class CERT(_Cert):
    pass

cdef class CERTREQ(_Cert):
    pass

cdef class AUTH(_Record):
    cdef public int method
    cdef public bytes data

cdef class Nonce(_Record):
    cdef public bytes data

cdef class Notify(_Record):
    cdef public int type, protocol_id
    cdef public bytes data, spi

cdef class Delete(_Record):
    cdef public int protocol_id
    cdef public list spis

cdef class VendorID(_Record):
    cdef public bytes data

cdef class TrafficSelector(_Record):
    cdef public int ts_type, ip_protocol, start_port, end_port
    cdef public bytes start_addr, end_addr

cdef class RawSelector(_Record):
    cdef public int ts_type
    cdef public bytes data

cdef class _TS(_Record):
    cdef public list selectors

cdef class TSi(_TS):
    pass

cdef class TSr(_TS):
    pass

cdef class SK(_Record):
    cdef public int next_payload
    cdef public bytes body
    cdef public Py_ssize_t offset

cdef class CP(_Record):
    cdef public int cfg_type
    cdef public list attributes

cdef class EAP(_Record):
    cdef public bytes data

cdef class SKF(_Record):
    cdef public int next_payload, fragment_number, total_fragments
    cdef public bytes body
    cdef public Py_ssize_t offset

cdef class Unknown(_Record):
    cdef public int payload_type
    cdef public bint critical
    cdef public bytes data

cdef class Message(_Record):
    cdef public bytes spi_i, spi_r
    cdef public int exchange_type, flags, version
    cdef public long long message_id
    cdef public list payloads


# ------------------------------------------------------------------ decode

@cython.locals(v="unsigned long long")
cdef unsigned long long _u32(cbuf p, Py_ssize_t o)

@cython.locals(p=cbuf, n=Py_ssize_t, version=int, flags=int, major=int,
               length=Py_ssize_t, m=Message, spi_i=bytes)
cpdef Message decode(object data)

cpdef list decode_payloads(object data, object first_payload_type)

@cython.locals(p=cbuf, count=Py_ssize_t, nxt=int, plen=Py_ssize_t, pend=Py_ssize_t,
               payloads=list)
cdef list _chain(bytes data, Py_ssize_t off, Py_ssize_t end, int np, bint outer)

@cython.locals(p=cbuf, o=Py_ssize_t, more=int, plen=Py_ssize_t, proposals=list, sa=SA)
cdef SA _d_sa(bytes data, Py_ssize_t off, Py_ssize_t end)

@cython.locals(p=cbuf, protocol_id=int, spi_size=int, count=int, bad=bint, t=Py_ssize_t,
               prop=Proposal, transforms=list, more=int, tlen=Py_ssize_t)
cdef Proposal _d_proposal(bytes data, Py_ssize_t o, Py_ssize_t end)

@cython.locals(p=cbuf, attributes=list, a=Py_ssize_t, attr=int, value=int,
               alen=Py_ssize_t, tr=Transform, count=Py_ssize_t)
cdef Transform _d_transform(bytes data, Py_ssize_t o, Py_ssize_t end)

@cython.locals(p=cbuf, ke=KE)
cdef KE _d_ke(bytes data, Py_ssize_t off, Py_ssize_t end)

@cython.locals(p=cbuf, ident=_ID)
cdef _ID _d_id(bytes data, Py_ssize_t off, Py_ssize_t end, int np)

@cython.locals(p=cbuf, cert=_Cert)
cdef _Cert _d_cert(bytes data, Py_ssize_t off, Py_ssize_t end, int np)

@cython.locals(p=cbuf, auth=AUTH)
cdef AUTH _d_auth(bytes data, Py_ssize_t off, Py_ssize_t end)

@cython.locals(p=cbuf, size=Py_ssize_t, nonce=Nonce)
cdef Nonce _d_nonce(bytes data, Py_ssize_t off, Py_ssize_t end)

@cython.locals(p=cbuf, spi_size=int, d=Py_ssize_t, n=Notify)
cdef Notify _d_notify(bytes data, Py_ssize_t off, Py_ssize_t end)

@cython.locals(p=cbuf, protocol_id=int, spi_size=Py_ssize_t, count=Py_ssize_t, bad=bint,
               spis=list, s=Py_ssize_t, i=Py_ssize_t, d=Delete)
cdef Delete _d_delete(bytes data, Py_ssize_t off, Py_ssize_t end)

@cython.locals(p=cbuf, count=int, selectors=list, o=Py_ssize_t, ts_type=int,
               slen=Py_ssize_t, size=Py_ssize_t, ts=TrafficSelector, raw=RawSelector,
               tsp=_TS, i=Py_ssize_t)
cdef _TS _d_ts(bytes data, Py_ssize_t off, Py_ssize_t end, int np)

@cython.locals(p=cbuf, sk=SK)
cdef SK _d_sk(bytes data, Py_ssize_t off, Py_ssize_t end, int nxt)

@cython.locals(p=cbuf, number=int, total=int, skf=SKF)
cdef SKF _d_skf(bytes data, Py_ssize_t off, Py_ssize_t end, int nxt)

@cython.locals(p=cbuf, attributes=list, a=Py_ssize_t, attr=int, alen=Py_ssize_t, cp=CP)
cdef CP _d_cp(bytes data, Py_ssize_t off, Py_ssize_t end)

@cython.locals(p=cbuf, eap=EAP)
cdef EAP _d_eap(bytes data, Py_ssize_t off, Py_ssize_t end)


# ------------------------------------------------------------------ encode

@cython.locals(payloads=list, size=Py_ssize_t)
cpdef bytes encode(Message message)

cpdef bytes encode_payloads(list payloads)

cpdef bytes encode_header(Message message, Py_ssize_t length)

cdef object _buffer(Py_ssize_t size)
cdef bytes _result(object out)

cdef long long _check(long long value, long long limit, str what) except? -1

@cython.locals(w=wbuf, spi_i=bytes, spi_r=bytes, payloads=list)
cdef _put_header(object out, Message message, Py_ssize_t length)

cdef void _put32(wbuf w, Py_ssize_t o, unsigned long long v) noexcept
cdef void _put16(wbuf w, Py_ssize_t o, unsigned int v) noexcept

@cython.locals(size=Py_ssize_t, n=Py_ssize_t, i=Py_ssize_t, plen=Py_ssize_t)
cdef Py_ssize_t _chain_size(list payloads, bint outer) except -1

@cython.locals(size=Py_ssize_t, prop=Proposal, n=Notify, sa=SA, ke=KE, nonce=Nonce, sk=SK,
               ident=_ID, auth=AUTH)
cdef Py_ssize_t _size(object p) except -1

@cython.locals(size=Py_ssize_t, tr=Transform)
cdef Py_ssize_t _proposal_size(Proposal prop) except -1

cdef int _ptype(object p) except -1

@cython.locals(n=Py_ssize_t, i=Py_ssize_t, nxt=int)
cdef Py_ssize_t _put_chain(object out, Py_ssize_t pos, list payloads) except -1

@cython.locals(k=Py_ssize_t, w=wbuf, b=cbuf, i=Py_ssize_t)
cdef Py_ssize_t _put_bytes(object out, Py_ssize_t pos, bytes blob) except -1

@cython.locals(w=wbuf, start=Py_ssize_t, n=Notify, spi=bytes, sa=SA, proposals=list,
               last=Py_ssize_t, i=Py_ssize_t, ke=KE, nonce=Nonce, sk=SK, ident=_ID,
               auth=AUTH, cert=_Cert, vid=VendorID, eap=EAP, skf=SKF, unknown=Unknown)
cdef Py_ssize_t _put_payload(object out, Py_ssize_t pos, object p, int nxt) except -1

@cython.locals(w=wbuf, start=Py_ssize_t, spi=bytes, transforms=list, last_t=Py_ssize_t,
               i=Py_ssize_t, tr=Transform, tstart=Py_ssize_t, atype=int)
cdef Py_ssize_t _put_proposal(object out, Py_ssize_t pos, Proposal prop, bint last) except -1

@cython.locals(w=wbuf, selectors=list, ts=TrafficSelector, raw=RawSelector,
               start_addr=bytes, end_addr=bytes, size=Py_ssize_t)
cdef Py_ssize_t _put_ts(object out, Py_ssize_t pos, _TS p) except -1

@cython.locals(w=wbuf, spis=list, protocol_id=int, spi_size=Py_ssize_t, spi=bytes)
cdef Py_ssize_t _put_delete(object out, Py_ssize_t pos, Delete d) except -1

@cython.locals(w=wbuf, value=bytes)
cdef Py_ssize_t _put_cp(object out, Py_ssize_t pos, CP cp) except -1
