/* faiss_shim.h: a small C API over FAISS 1.7.3 (C++), for P/Invoke from Bert4Rec.Retrieval.
 *
 * Conventions (as FAISS's own c_api): every function returns an int status (0 = ok, <0 = error) and writes results
 * through pointers; no C++ exception crosses this boundary; after an error, b4r_last_error() returns the message
 * (kept per thread, valid until the next call on that thread). Handles are opaque; each type has one free function.
 * Labels returned by search are the 0-based positions of the vectors in the order they were added (-1 = no result);
 * the caller maps positions to its own ids.
 */
#ifndef BERT4REC_FAISS_SHIM_H
#define BERT4REC_FAISS_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define B4R_API __attribute__((visibility("default")))
#else
#define B4R_API
#endif

/* Status codes. */
#define B4R_OK 0
#define B4R_ERR_FAISS -1       /* FAISS threw faiss::FaissException */
#define B4R_ERR_STD -2         /* another std::exception (e.g. bad_alloc) */
#define B4R_ERR_UNKNOWN -3     /* anything else */
#define B4R_ERR_ARGUMENT -4    /* an argument is null or out of range */

/* Metric of an index. */
#define B4R_METRIC_INNER_PRODUCT 0
#define B4R_METRIC_L2 1

typedef struct b4r_index b4r_index;

/* The message of the last error on this thread ("" if none). */
B4R_API const char* b4r_last_error(void);

/* Creates an index from a FAISS factory string ("Flat", "HNSW32", "IVF1024,Flat", "IVF256,PQ16,RFlat", ...).
 * dimension > 0; metric: B4R_METRIC_*. HNSW graphs use efConstruction = ef_construction when > 0. */
B4R_API int b4r_index_create(const char* factory, int dimension, int metric, int ef_construction, b4r_index** out);

/* 1 in *out when the index needs no (more) training. */
B4R_API int b4r_index_is_trained(const b4r_index* index, int* out);

/* Trains on n vectors x (n*dimension floats). */
B4R_API int b4r_index_train(b4r_index* index, int64_t n, const float* x);

/* Adds n vectors x (n*dimension floats); they get positions ntotal .. ntotal+n-1. */
B4R_API int b4r_index_add(b4r_index* index, int64_t n, const float* x);

/* Searches n queries x (n*dimension floats) for the k best; distances: n*k floats, labels: n*k int64 (positions, -1
 * where fewer than k results exist). ef_search (HNSW) and nprobe (IVF) apply to this call only when > 0; 0 uses the
 * index's defaults (b4r_index_set_defaults). Safe from many threads at once: calls at the defaults run concurrently,
 * a call at other settings runs alone (FAISS 1.7.3 keeps them in fields of the index). */
B4R_API int b4r_index_search(const b4r_index* index, int64_t n, const float* x, int64_t k, int ef_search, int nprobe,
                             float* distances, int64_t* labels);

/* Sets the index's own defaults used when a search passes 0: efSearch (HNSW) and nprobe (IVF); 0 keeps a setting. */
B4R_API int b4r_index_set_defaults(b4r_index* index, int ef_search, int nprobe);

B4R_API int b4r_index_ntotal(const b4r_index* index, int64_t* out);
B4R_API int b4r_index_dimension(const b4r_index* index, int* out);
B4R_API int b4r_index_metric(const b4r_index* index, int* out);

/* Serializes the index (FAISS's own format) into a buffer that the caller frees with b4r_buffer_free. */
B4R_API int b4r_index_serialize(const b4r_index* index, uint8_t** data, size_t* size);
B4R_API void b4r_buffer_free(uint8_t* data);

/* Reads an index serialized by b4r_index_serialize (size bytes at data). */
B4R_API int b4r_index_deserialize(const uint8_t* data, size_t size, b4r_index** out);

/* Frees an index (null is fine). */
B4R_API void b4r_index_free(b4r_index* index);

/* Sets the OpenMP thread count FAISS uses inside one call (1 = none; searches from many request threads want 1). */
B4R_API int b4r_set_omp_threads(int threads);

#ifdef __cplusplus
}
#endif

#endif
