/* What ids.hmac_key costs per id: HMAC-SHA-256 of a 29-byte id, 500,000 times, with the key
 * set up for each id (lf_id_hash, as `leadflow inspect` does for its one id) and with the keyed
 * hasher (the key set once, as `leadflow run` does), in CPU µs per id. Prints its figures;
 * asserts none.
 *   cc -O2 -Iinclude bench/id_hash_cost.c build/libleadflow_core.a -lcrypto -o id_hash_cost */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "leadflow/id_hash.h"

static double lf_cpu_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

int main(void)
{
    const char *key = "0123456789abcdef0123456789abcdef";
    const char *id = "ana.lopez@example-company.com";
    char out[LF_ID_HASH_HEX + 1];
    size_t n = strlen(id);
    enum { N = 500000 };
    double a = lf_cpu_us();
    for (int i = 0; i < N; i++)
        lf_id_hash(key, strlen(key), id, n, out);
    double b = lf_cpu_us();
    lf_id_hasher_t *h = lf_id_hasher_new(key, strlen(key));
    if (!h) return 1;
    double c = lf_cpu_us();
    for (int i = 0; i < N; i++)
        lf_id_hasher_hash(h, id, n, out);
    double d = lf_cpu_us();
    lf_id_hasher_free(h);
    printf("HMAC-SHA-256 of a %zu-byte id: key set up per id %.2f us, once %.2f us "
           "(CPU per id, %d ids)\n",
           n, (b - a) / N, (d - c) / N, N);
    return 0;
}
