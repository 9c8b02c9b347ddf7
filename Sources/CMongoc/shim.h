#ifndef CMONGOC_SHIM_H
#define CMONGOC_SHIM_H
#include <bson/bson.h>
#include <mongoc/mongoc.h>

/* Swift sees bson_t only through OpaquePointer, so it cannot ask for its size or alignment.
   Out-parameters (a command's `reply`) are allocated from Swift with these two. */
static inline size_t chat_bson_size(void) { return sizeof(bson_t); }
static inline size_t chat_bson_alignment(void) { return BSON_ALIGNOF(bson_t); }
#endif
