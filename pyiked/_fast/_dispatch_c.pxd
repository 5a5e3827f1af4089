# Types for compiling _dispatch_py.py a second time as _dispatch_c (pure-Python mode):
# the datagram is read through a const pointer, nothing is allocated but the result.

cimport cython

ctypedef const unsigned char *cbuf

cdef int _IKE_PORT
cdef Py_ssize_t _HEADER_LEN, _ESP_HEADER_LEN
cdef int _FLAG_MASK
cdef tuple _KEEPALIVE, _SHORT, _LENGTH, _VERSION, _ZERO_SPI

@cython.locals(p=cbuf, n=Py_ssize_t)
cpdef tuple classify(object datagram, int local_port)

@cython.locals(p=cbuf, major=int, length=Py_ssize_t)
cdef tuple _read_header(bytes data, Py_ssize_t off, Py_ssize_t n)

@cython.locals(v="unsigned long long")
cdef unsigned long long _u32(cbuf p, Py_ssize_t o)
