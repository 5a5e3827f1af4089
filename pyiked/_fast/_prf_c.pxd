# Cython declarations for _prf_py.py compiled as _prf_c (pure-Python mode).
cimport cython

cpdef Py_ssize_t out_len(object prf_id) except -1

cpdef bytes _xor16(bytes a, bytes b)

cpdef tuple xcbc_subkeys(object key)

@cython.locals(n=Py_ssize_t, cut=Py_ssize_t, head=bytes, last=bytes, out=bytes, tail=bytes)
cpdef bytes xcbc_mac_subkeys(bytes k1, bytes k2, bytes k3, bytes data)

cpdef bytes xcbc_mac(object key, object data)

@cython.locals(n=Py_ssize_t)
cpdef bytes xcbc_prf_key(object key)

cpdef bytes cmac_prf_key(object key)

@cython.locals(name=object)
cpdef bytes prf(object prf_id, object key, object data)

@cython.locals(size=Py_ssize_t, blocks=Py_ssize_t, i=Py_ssize_t, t=bytes, out=list, name=object,
               base=object, mac=object)
cpdef bytes prf_plus(object prf_id, object key, object seed, Py_ssize_t length)

@cython.locals(blocks=Py_ssize_t, i=Py_ssize_t, t=bytes, out=list)
cpdef bytes _prf_plus_xcbc(bytes k1, bytes k2, bytes k3, bytes seed, Py_ssize_t length)

@cython.locals(blocks=Py_ssize_t, i=Py_ssize_t, t=bytes, out=list)
cpdef bytes _prf_plus_cmac(object key, object seed, Py_ssize_t length)

@cython.locals(pieces=list, pos=Py_ssize_t, end=Py_ssize_t, n=Py_ssize_t)
cpdef tuple split(object keymat, object lengths)

@cython.locals(total=Py_ssize_t, n=Py_ssize_t)
cpdef tuple prf_plus_split(object prf_id, object key, object seed, object lengths)
