# Types for compiling _dispatch_py.py a second time as _dispatch_c (pure-Python mode):
# the datagram is read through a const pointer, nothing is allocated but the result.

cimport cython

ctypedef const unsigned char *cbuf

cdef int _IKE_PORT
cdef Py_ssize_t _HEADER_LEN, _ESP_HEADER_LEN
cdef int _FLAG_MASK
cdef tuple _KEEPALIVE, _SHORT, _LENGTH, _VERSION, _ZERO_SPI
cdef Py_ssize_t _COOKIE_MAC_LEN, _COOKIE_LEN
cdef int _PT_NOTIFY, _PT_NONCE, _COOKIE_TYPE
cdef bytes _COOKIE_REPLY_HEAD, _COOKIE_NOTIFY_HEAD
cdef dict _KEYED

@cython.locals(p=cbuf, n=Py_ssize_t)
cpdef tuple classify(object datagram, int local_port)

@cython.locals(p=cbuf, major=int, length=Py_ssize_t)
cdef tuple _read_header(bytes data, Py_ssize_t off, Py_ssize_t n)

@cython.locals(v="unsigned long long")
cdef unsigned long long _u32(cbuf p, Py_ssize_t o)

@cython.locals(p=cbuf, n=Py_ssize_t, np=int, pos=Py_ssize_t, plen=Py_ssize_t, first=bint,
               cookie_at=Py_ssize_t, cookie_end=Py_ssize_t, nonce_at=Py_ssize_t,
               nonce_end=Py_ssize_t, v=int, message=bytes, key=bytes, mac=bytes)
cpdef object cookie_gate(object datagram, Py_ssize_t off, bytes ip, int version, bytes secret,
                         int prev_version, bytes prev_secret)

cdef bytes _mac(bytes key, bytes message)
