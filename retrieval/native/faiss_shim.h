/* faiss_shim.h: a small C API over FAISS 1.7.3 (C++), for P/Invoke from Bert4Rec.Retrieval.
 *
 * Conventions (as FAISS's own c_api): every function returns an int status (0 = ok, <0 = error) and writes results
 * through pointers; no C++ exception crosses this boundary; after an error, b4r_last_error() returns the message
 * (kept per thread, valid until the next call on that thread). Handles are opaque; each type has one free function.
 *
 * Every index is a faiss::IndexIDMap around the index the factory string describes, so the ids the caller adds are
 * stored in the index, come back from search, and are in the file: what b4r_index_write writes is exactly what
 * faiss::write_index writes, and faiss::read_index (C++ or python) loads it.
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

/* Byte sinks and sources for writing and reading index files through the caller's own streams. write: returns size
 * when all size bytes were taken, anything else is a failure. read: fills up to size bytes, returns how many (0 = end
 * of data or failure). */
typedef size_t (*b4r_write_fn)(void* context, const uint8_t* data, size_t size);
typedef size_t (*b4r_read_fn)(void* context, uint8_t* data, size_t size);

/* The message of the last error on this thread ("" if none). */
B4R_API const char* b4r_last_error(void);

/* Creates an empty index from a FAISS factory string ("Flat", "HNSW32", "IVF1024,Flat", "IVF4096,PQ32,RFlat", ...),
 * wrapped in an IndexIDMap (a factory that starts with "IDMap" is refused: the wrapper is always added here).
 * dimension > 0; metric: B4R_METRIC_*. HNSW graphs use efConstruction = ef_construction when > 0. */
B4R_API int b4r_index_create(const char* factory, int dimension, int metric, int ef_construction, b4r_index** out);

/* 1 in *out when the index needs no (more) training. */
B4R_API int b4r_index_is_trained(const b4r_index* index, int* out);

/* Trains on n vectors x (n*dimension floats). */
B4R_API int b4r_index_train(b4r_index* index, int64_t n, const float* x);

/* Adds n vectors x (n*dimension floats) with the caller's ids (n int64). */
B4R_API int b4r_index_add(b4r_index* index, int64_t n, const float* x, const int64_t* ids);

/* Searches n queries x (n*dimension floats) for the k best; distances: n*k floats, labels: n*k int64 (the caller's
 * ids, -1 where fewer than k results exist). Settings > 0 apply to this call only, 0 uses the index's defaults:
 * ef_search (HNSW), nprobe (IVF), k_factor (refine: the base index returns k*k_factor candidates that are re-scored
 * exactly). HNSW and IVF take them through FAISS's SearchParametersHNSW / SearchParametersIVF, so concurrent calls at
 * different settings share nothing; index types that take no search parameters in FAISS 1.7.3 (IVF fast-scan) get
 * theirs set on the index under an exclusive lock. Safe from many threads at once. */
B4R_API int b4r_index_search(const b4r_index* index, int64_t n, const float* x, int64_t k, int ef_search, int nprobe,
                             float k_factor, float* distances, int64_t* labels);

/* Sets the defaults stored in the index (and its file) used when a search passes 0: efSearch (HNSW), nprobe (IVF),
 * k_factor (refine); 0 keeps a setting. */
B4R_API int b4r_index_set_defaults(b4r_index* index, int ef_search, int nprobe, float k_factor);

B4R_API int b4r_index_ntotal(const b4r_index* index, int64_t* out);
B4R_API int b4r_index_dimension(const b4r_index* index, int* out);
B4R_API int b4r_index_metric(const b4r_index* index, int* out);

/* Writes the index with faiss::write_index through write(context, ...). */
B4R_API int b4r_index_write(const b4r_index* index, b4r_write_fn write, void* context);

/* Reads an index with faiss::read_index through read(context, ...); an index that is not an IndexIDMap is refused. */
B4R_API int b4r_index_read(b4r_read_fn read, void* context, b4r_index** out);

/* Frees an index (null is fine). */
B4R_API void b4r_index_free(b4r_index* index);

/* Sets the OpenMP thread count FAISS uses inside one call (1 = none; searches from many request threads want 1). */
B4R_API int b4r_set_omp_threads(int threads);

#ifdef __cplusplus
}
#endif

#endif
