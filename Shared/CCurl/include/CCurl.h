#ifndef CCURL_H
#define CCURL_H

/*
 * Swift-callable shims over libcurl.
 *
 * `curl_easy_setopt`, `curl_easy_getinfo` and `curl_multi_setopt` are C variadic functions, which
 * Swift cannot call. Each wrapper below fixes the type of the variadic argument, so Swift code
 * picks the wrapper that matches the option's documented type (long, string, pointer, curl_off_t,
 * function pointer). Every name is `ccurl_`-prefixed: nothing here lives in curl's own namespace.
 *
 * The header includes <curl/curl.h> so that Swift also sees the non-variadic curl API
 * (curl_easy_init, curl_multi_perform, curl_url_*, the CURLOPT_/CURLINFO_/CURLE_ constants, ...).
 */

#include <curl/curl.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* MARK: - Global state */

/// `curl_global_init(CURL_GLOBAL_ALL)`. `CURL_GLOBAL_ALL` is a macro expression Swift does not
/// import, hence this wrapper. Callers must make sure it runs exactly once per process.
CURLcode ccurl_global_init_all(void);

/* MARK: - Callback types */

/// Signature of CURLOPT_WRITEFUNCTION and CURLOPT_HEADERFUNCTION callbacks.
typedef size_t (*ccurl_data_callback)(char *buffer, size_t size, size_t nitems, void *userdata);

/* MARK: - curl_easy_setopt, one wrapper per argument type */

CURLcode ccurl_easy_setopt_long(CURL *handle, CURLoption option, long value);
/// `value` is copied by libcurl (true for every string option since 7.17.0, except
/// CURLOPT_POSTFIELDS, which must not be set through this wrapper).
CURLcode ccurl_easy_setopt_string(CURL *handle, CURLoption option, const char *value);
CURLcode ccurl_easy_setopt_pointer(CURL *handle, CURLoption option, void *value);
CURLcode ccurl_easy_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value);
CURLcode ccurl_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value);
CURLcode ccurl_easy_setopt_data_callback(CURL *handle, CURLoption option, ccurl_data_callback value);

/// Sets the request body: CURLOPT_POSTFIELDSIZE_LARGE followed by CURLOPT_COPYPOSTFIELDS, in that
/// order, so that libcurl copies exactly `length` bytes (the body may contain NUL bytes).
/// A zero `length` is handled with a non-NULL empty buffer: a NULL CURLOPT_COPYPOSTFIELDS would
/// make libcurl fall back to its default read callback, which reads from stdin.
CURLcode ccurl_easy_set_body(CURL *handle, const void *bytes, curl_off_t length);

/* MARK: - curl_easy_getinfo, one wrapper per result type */

CURLcode ccurl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value);
CURLcode ccurl_easy_getinfo_double(CURL *handle, CURLINFO info, double *value);
CURLcode ccurl_easy_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value);
/// The string stays owned by libcurl and is valid until the handle is reset or cleaned up.
CURLcode ccurl_easy_getinfo_string(CURL *handle, CURLINFO info, const char **value);

/* MARK: - curl_multi_setopt */

CURLMcode ccurl_multi_setopt_long(CURLM *handle, CURLMoption option, long value);

/* MARK: - Engine thread */

/// Names the calling thread (shown by `top -H`, gdb, perf). Linux limits names to 15 bytes; longer
/// names are truncated. Returns 0 on success. (`pthread_setname_np` needs _GNU_SOURCE on glibc,
/// which Swift's Glibc module does not define.)
int ccurl_set_current_thread_name(const char *name);

/* MARK: - CURLMsg */

/// The `CURLcode` of a CURLMSG_DONE message (reads the `data.result` union member).
CURLcode ccurl_msg_result(const CURLMsg *message);

#ifdef __cplusplus
}
#endif

#endif /* CCURL_H */
