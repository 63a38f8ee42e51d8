#ifndef KEYROTD_CCURL_H
#define KEYROTD_CCURL_H

// Typed wrappers around libcurl's variadic calls, which Swift cannot call.
// Nothing here turns on verbose output: it would print the Authorization header.

#include <curl/curl.h>

static inline CURLcode keyrotd_curl_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode keyrotd_curl_setopt_off(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode keyrotd_curl_setopt_str(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode keyrotd_curl_setopt_ptr(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode keyrotd_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}

typedef size_t (*keyrotd_curl_write_callback)(char *data, size_t size, size_t count, void *context);
typedef int (*keyrotd_curl_xferinfo_callback)(void *context, curl_off_t dltotal, curl_off_t dlnow,
                                               curl_off_t ultotal, curl_off_t ulnow);

static inline CURLcode keyrotd_curl_setopt_write_callback(CURL *handle, CURLoption option,
                                                          keyrotd_curl_write_callback callback) {
    return curl_easy_setopt(handle, option, callback);
}

static inline CURLcode keyrotd_curl_setopt_xferinfo_callback(CURL *handle, keyrotd_curl_xferinfo_callback callback) {
    return curl_easy_setopt(handle, CURLOPT_XFERINFOFUNCTION, callback);
}

static inline CURLcode keyrotd_curl_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode keyrotd_curl_getinfo_off(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}

#endif
