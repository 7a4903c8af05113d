/* Verifies an SEV-SNP report with the C ABI and prints the verdict JSON.
 * usage: verify_c REPORT [CERT...]   (time: $CLOISTER_AT seconds since the epoch, default now) */
#include <cloister/cloister.h>
#include <stdio.h>
#include <stdlib.h>

static cloister_bytes read_all(const char* path) {
  cloister_bytes out = {NULL, 0};
  FILE* f = fopen(path, "rb");
  if (f == NULL) return out;
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t* data = malloc(size > 0 ? (size_t)size : 1);
  out.len = fread(data, 1, (size_t)size, f);
  out.data = data;
  fclose(f);
  return out;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s REPORT [CERT...]\n", argv[0]);
    return CLOISTER_EINVAL;
  }
  cloister_verifier* verifier = NULL;
  char* error = NULL;
  if (cloister_verifier_new(NULL, &verifier, &error) != CLOISTER_PASS) {
    fprintf(stderr, "%s\n", error);
    cloister_free(error);
    return CLOISTER_EINVAL;
  }
  cloister_bytes certs[16];
  size_t count = 0;
  for (int i = 2; i < argc && count < 16; ++i) certs[count++] = read_all(argv[i]);

  cloister_verify_request request = {0};
  request.struct_size = sizeof request;
  request.evidence = read_all(argv[1]);
  request.certificates = certs;
  request.certificate_count = count;
  const char* at = getenv("CLOISTER_AT");
  request.time = at ? strtoll(at, NULL, 10) : 0;

  char* verdict = NULL;
  int rc = cloister_verify(verifier, &request, &verdict);
  printf("cloister %s: %s\n", cloister_version(), verdict);
  cloister_free(verdict);
  cloister_verifier_free(verifier);
  free((void*)request.evidence.data);
  for (size_t i = 0; i < count; ++i) free((void*)certs[i].data);
  return rc;
}
