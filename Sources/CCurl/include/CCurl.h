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

// CURLAUTH_BASIC is a cast macro Swift cannot import.
static const long keyrotd_curlauth_basic = (long)CURLAUTH_BASIC;

static inline CURLcode keyrotd_curl_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode keyrotd_curl_getinfo_str(CURL *handle, CURLINFO info, const char **value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode keyrotd_curl_getinfo_off(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}

// The connect-time guard (shim.c). When `loopback_only` is set, libcurl may open
// sockets only to loopback peers (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104), whatever
// name resolved to them: the check is on the address libcurl is about to connect
// to, so no disagreement between URL parsers can send plain http elsewhere.
// `refused` is set when a connection was refused.
struct keyrotd_socket_guard {
    int loopback_only;
    int refused;
};

curl_socket_t keyrotd_guarded_opensocket(void *guard, curlsocktype purpose, struct curl_sockaddr *address);

// CURLOPT_OPENSOCKETFUNCTION = keyrotd_guarded_opensocket, CURLOPT_OPENSOCKETDATA = guard;
// the first failing setopt's code.
static inline CURLcode keyrotd_curl_set_socket_guard(CURL *handle, struct keyrotd_socket_guard *guard) {
    CURLcode code = curl_easy_setopt(handle, CURLOPT_OPENSOCKETFUNCTION, keyrotd_guarded_opensocket);
    if (code != CURLE_OK) return code;
    return curl_easy_setopt(handle, CURLOPT_OPENSOCKETDATA, (void *)guard);
}

#endif
