# Cython declarations for _sk_py.py compiled as _sk_c (pure-Python mode).
cimport cython

cdef class SKCipher:
    cdef readonly bint aead
    cdef readonly Py_ssize_t iv_len
    cdef readonly Py_ssize_t block_size
    cdef readonly Py_ssize_t icv_len
    cdef readonly Py_ssize_t overhead
    cdef readonly Py_ssize_t fragment_overhead
    cdef int _kind
    cdef int _integ_kind
    cdef object _random
    cdef bytes _key
    cdef bytes _salt
    cdef object _aead_new
    cdef int _aead_icv
    cdef object _algo
    cdef bytes _integ_key
    cdef str _hash_name
    cdef bytes _k1
    cdef bytes _k2
    cdef bytes _k3
    cdef object _cmac_base
    cdef unsigned long long _iv_counter
    cdef unsigned long long _iv_mask

    cdef object _aead(self)

    @cython.locals(avail=Py_ssize_t)
    cpdef Py_ssize_t max_plaintext(self, Py_ssize_t total_len, bint fragment=*) except? -1

    @cython.locals(counter=object, iv=object)
    cdef bytes _next_iv(self)

    @cython.locals(kind=int, out=bytes)
    cdef bytes _encrypt(self, bytes iv, bytes inner, bytes aad)

    @cython.locals(kind=int, mac=bytes)
    cdef bytes _icv(self, bytes data)

    @cython.locals(plen=Py_ssize_t, block=Py_ssize_t, padlen=Py_ssize_t, sk_len=Py_ssize_t,
                   total=Py_ssize_t, iv=bytes, head=bytes, inner=bytes, message=bytes)
    cdef bytes _seal(self, object ike_header, int payload_type, int first_inner_type, bytes extra,
                     object plaintext)

    cpdef bytes seal(self, object ike_header, int first_inner_type, object plaintext)

    cpdef bytes seal_fragment(self, object ike_header, int first_inner_type, int fragment_number,
                              int total_fragments, object plaintext)

    @cython.locals(kind=int)
    cdef bytes _decrypt(self, bytes iv, bytes ciphertext, bytes icv, bytes aad)

    @cython.locals(n=Py_ssize_t, sk_len=Py_ssize_t, body=Py_ssize_t, ct_start=Py_ssize_t,
                   ct_end=Py_ssize_t, ct_len=Py_ssize_t, block=Py_ssize_t, number=Py_ssize_t,
                   total=Py_ssize_t, iv=bytes, icv=bytes, plain=bytes, last=Py_ssize_t,
                   padlen=Py_ssize_t)
    cdef bytes _open(self, object message, Py_ssize_t offset, int payload_type, Py_ssize_t header_len)

    cpdef bytes open(self, object message, Py_ssize_t sk_offset)

    cpdef tuple open_fragment(self, object message, Py_ssize_t skf_offset)
