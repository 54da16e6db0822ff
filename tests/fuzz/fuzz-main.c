/* fuzz-main.c: runs a fuzz target over the files and directories given, for any compiler. */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/*
 * Feed one file to the target in a buffer of exactly its size, so that a read past
 * the end is caught by AddressSanitizer. Returns 0, or -1 if it cannot be read.
 */
static int
run_file(const char *path)
{
	FILE *fp;
	struct stat st;
	uint8_t *buf;
	size_t n;

	if ((fp = fopen(path, "rb")) == NULL || fstat(fileno(fp), &st) == -1) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		if (fp != NULL)
			fclose(fp);
		return -1;
	}
	n = (size_t)st.st_size;
	if ((buf = malloc(n ? n : 1)) == NULL ||
	    fread(buf, 1, n, fp) != n) {
		fprintf(stderr, "%s: cannot read\n", path);
		free(buf);
		fclose(fp);
		return -1;
	}
	fclose(fp);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 0;
}

int
main(int argc, char *argv[])
{
	struct stat st;
	struct dirent *de;
	DIR *dir;
	char *path;
	int i, nfiles = 0, rv = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s file-or-directory ...\n", argv[0]);
		return 2;
	}
	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) == -1) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			rv = 1;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (run_file(argv[i]) == -1)
				rv = 1;
			else
				nfiles++;
			continue;
		}
		if ((dir = opendir(argv[i])) == NULL) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			rv = 1;
			continue;
		}
		while ((de = readdir(dir)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			if (asprintf(&path, "%s/%s", argv[i], de->d_name) == -1) {
				fprintf(stderr, "out of memory\n");
				return 1;
			}
			if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
				if (run_file(path) == -1)
					rv = 1;
				else
					nfiles++;
			}
			free(path);
		}
		closedir(dir);
	}
	printf("%d inputs run\n", nfiles);
	if (nfiles == 0)
		rv = 1;
	return rv;
}
