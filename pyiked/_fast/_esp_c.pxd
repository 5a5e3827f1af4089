# Cython declarations for _esp_py.py compiled as _esp_c (pure-Python mode).
import cython


cdef class ReplayWindow:
    cdef public unsigned int size
    cdef public bint esn
    cdef public unsigned long long top
    cdef public object bitmap
    cdef object _mask
    cdef long long _infer_w

    @cython.locals(seq=cython.ulonglong, top=cython.ulonglong, diff=cython.ulonglong)
    cpdef unsigned long long check(self, unsigned long long seq_low) except? 0

    @cython.locals(w=cython.longlong, th=cython.longlong, tl=cython.longlong,
                   bl=cython.longlong, seqh=cython.longlong, full=cython.ulonglong)
    cdef unsigned long long _infer(self, long long seql) except? 0

    @cython.locals(top=cython.ulonglong, shift=cython.ulonglong)
    cpdef update(self, unsigned long long seq)


cdef class EspSA:
    cdef public unsigned int spi
    cdef bytes _spi_bytes
    cdef public bint esn
    cdef public int encr_id
    cdef public int integ_id
    cdef public unsigned long long seq
    cdef unsigned long long _seq_max
    cdef unsigned long long _seq_soft
    cdef public ReplayWindow replay
    cdef public unsigned long long byte_count
    cdef public unsigned long long packet_count
    cdef public int state
    cdef int _pending
    cdef unsigned long long _soft_bytes
    cdef unsigned long long _hard_bytes
    cdef unsigned long long _soft_packets
    cdef unsigned long long _hard_packets
    cdef unsigned long long _next_bytes
    cdef unsigned long long _next_packets
    cdef bytes _iv_pool
    cdef Py_ssize_t _iv_pos
    cdef object _hmac
    cdef object _aead
    cdef object _aes
    cdef bytes _salt
    cdef Py_ssize_t _icv_len
    cdef int _kind
    cdef Py_ssize_t _iv_len
    cdef Py_ssize_t _block
    cdef object _enc
    cdef object _dec
    cdef object _enc_last
    cdef object _dec_last
    cdef Py_ssize_t _min_len

    cpdef set_limits(self, unsigned long long soft_bytes=*, unsigned long long hard_bytes=*,
                     unsigned long long soft_packets=*, unsigned long long hard_packets=*)
    cdef _arm(self)
    @cython.locals(s=cython.int)
    cdef _reach(self, int state)
    cdef _check_limits(self)
    cpdef expire(self, bint hard)
    @cython.locals(pending=cython.int)
    cpdef int take_expire(self)
    cdef _account(self, Py_ssize_t n)

    @cython.locals(seq=cython.ulonglong, n=cython.Py_ssize_t, padlen=cython.Py_ssize_t,
                   header=bytes, plaintext=bytes, ct=bytes, packet=bytes, sealed=bytes, aad=bytes)
    cpdef bytes encap(self, bytes inner, int next_header, iv=*)
    @cython.locals(pos=cython.Py_ssize_t)
    cdef bytes _random_iv(self)
    cdef bytes _cbc_encrypt(self, bytes iv, bytes plaintext)
    cdef bytes _cbc_decrypt(self, bytes iv, bytes ct)

    @cython.locals(n=cython.Py_ssize_t, spi=cython.uint, seq_low=cython.uint,
                   seq=cython.ulonglong, iv_end=cython.Py_ssize_t, icv_at=cython.Py_ssize_t,
                   iv=bytes, aad=bytes, plaintext=bytes)
    cpdef tuple decap(self, bytes packet)
    @cython.locals(icv_at=cython.Py_ssize_t)
    cdef bytes _gcm_short_decrypt(self, bytes nonce, bytes packet, Py_ssize_t iv_end, bytes aad)
    @cython.locals(size=cython.Py_ssize_t, padlen=cython.Py_ssize_t, next_header=cython.int,
                   end=cython.Py_ssize_t)
    cdef tuple _strip_trailer(self, bytes plaintext)


cdef tuple _ports(bytes packet, Py_ssize_t at, int proto, Py_ssize_t size)

@cython.locals(size=cython.Py_ssize_t, version=cython.int, ihl=cython.Py_ssize_t,
               length=cython.Py_ssize_t, proto=cython.int, at=cython.Py_ssize_t,
               offset=cython.int)
cpdef tuple packet_flow(bytes packet)
