/* HMAC-SHA-256 of lead ids (id_hash.h), with OpenSSL's libcrypto. */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <string.h>

#include "leadflow/alloc.h"
#include "leadflow/id_hash.h"

struct lf_id_hasher {
    EVP_MAC *mac;
    EVP_MAC_CTX *ctx;
};

lf_id_hasher_t *lf_id_hasher_new(const char *key, size_t keylen)
{
    lf_id_hasher_t *h = lf_calloc(1, sizeof(*h));
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (!(h->mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) || !(h->ctx = EVP_MAC_CTX_new(h->mac)) ||
        !EVP_MAC_init(h->ctx, (const unsigned char *)key, keylen, params)) {
        lf_id_hasher_free(h);
        return NULL;
    }
    return h;
}

int lf_id_hasher_hash(lf_id_hasher_t *h, const char *raw, size_t idlen, char *out)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t n = 0;
    /* A NULL key re-initialises with the key set at creation. */
    if (!EVP_MAC_init(h->ctx, NULL, 0, NULL) ||
        !EVP_MAC_update(h->ctx, (const unsigned char *)raw, idlen) ||
        !EVP_MAC_final(h->ctx, mac, &n, sizeof(mac)) || n * 2 != LF_ID_HASH_HEX) {
        out[0] = '\0';
        return LF_ERR;
    }
    lf_hex_encode(mac, n, out);
    return LF_OK;
}

void lf_id_hasher_free(lf_id_hasher_t *h)
{
    if (!h) return;
    EVP_MAC_CTX_free(h->ctx);
    EVP_MAC_free(h->mac);
    lf_free(h);
}

/* One id (inspect, the tests): the same HMAC, its key set up for this id alone. */
int lf_id_hash(const char *key, size_t keylen, const char *raw, size_t idlen, char *out)
{
    lf_id_hasher_t *h = lf_id_hasher_new(key, keylen);
    int rc = h ? lf_id_hasher_hash(h, raw, idlen, out) : LF_ERR;
    if (!h) out[0] = '\0';
    lf_id_hasher_free(h);
    return rc;
}

int lf_id_is_hashed(const char *s, size_t len)
{
    if (len != LF_ID_HASH_HEX) return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

static int lf_hash_one(lf_str_t *id, lf_id_hasher_t *h, lf_arena_t *arena)
{
    if (!id->len) return LF_OK;
    char *out = lf_arena_alloc(arena, LF_ID_HASH_HEX + 1);
    if (lf_id_hasher_hash(h, id->ptr, id->len, out) != LF_OK) return LF_ERR;
    *id = (lf_str_t){out, LF_ID_HASH_HEX};
    return LF_OK;
}

int lf_id_hashed_trait(const char *key, size_t len)
{
    return len == 5 && (memcmp(key, "email", 5) == 0 || memcmp(key, "phone", 5) == 0);
}

int lf_event_hash_ids(lf_event_t *ev, lf_id_hasher_t *h, lf_arena_t *arena)
{
    if (lf_hash_one(&ev->user_id, h, arena) != LF_OK ||
        lf_hash_one(&ev->anonymous_id, h, arena) != LF_OK ||
        lf_hash_one(&ev->previous_id, h, arena) != LF_OK)
        return LF_ERR;
    for (uint32_t i = 0; i < ev->ntraits; i++) {
        lf_kv_t *t = &ev->traits[i];
        if (!lf_id_hashed_trait(t->key.ptr, t->key.len)) continue;
        if (lf_hash_one(&t->val, h, arena) != LF_OK) return LF_ERR;
        t->is_num = 0;
    }
    return LF_OK;
}
