#include "src/tensor_file_io.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <random>

namespace tl {

namespace {

std::string sysError(const std::string& what, const std::string& path) {
  return what + " '" + path + "': " + std::strerror(errno);
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

void readExactly(int fd, void* dst, uint64_t n, uint64_t offset, const std::string& path) {
  auto* p = static_cast<char*>(dst);
  while (n > 0) {
    ssize_t got = ::pread(fd, p, n > (1u << 30) ? (1u << 30) : n, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      TORCH_CHECK(false, sysError("cannot read", path));
    }
    TORCH_CHECK(got > 0, "unexpected end of file in '", path, "' at byte ", offset);
    p += got;
    n -= static_cast<uint64_t>(got);
    offset += static_cast<uint64_t>(got);
  }
}

void writeAll(int fd, const void* src, uint64_t n, const std::string& path) {
  auto* p = static_cast<const char*>(src);
  while (n > 0) {
    ssize_t put = ::write(fd, p, n > (1u << 30) ? (1u << 30) : n);
    if (put < 0) {
      if (errno == EINTR) continue;
      TORCH_CHECK(false, sysError("cannot write", path));
    }
    p += put;
    n -= static_cast<uint64_t>(put);
  }
}

// Makes the rename itself durable (best effort: some file systems refuse fsync on a directory).
void syncDirectoryOf(const std::string& path) {
  const auto slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  Fd d;
  d.fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d.fd >= 0) ::fsync(d.fd);
}

}  // namespace

std::vector<at::Tensor> readTensors(const std::string& path, const std::vector<TensorSpec>& specs,
                                    const at::Device& device) {
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  TORCH_CHECK(f.fd >= 0, sysError("cannot open", path));
  struct stat st {};
  TORCH_CHECK(::fstat(f.fd, &st) == 0, sysError("cannot stat", path));
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  std::vector<at::Tensor> out;
  out.reserve(specs.size());
  for (const auto& s : specs) {
    at::Tensor t = at::empty(s.shape, at::TensorOptions().dtype(s.dtype));
    const uint64_t want = static_cast<uint64_t>(t.numel()) * t.element_size();
    TORCH_CHECK(want == s.nbytes, "a tensor of shape ", t.sizes(), " and dtype ", s.dtype, " needs ", want,
                " bytes but '", path, "' gives it ", s.nbytes);
    TORCH_CHECK(s.offset <= size && s.nbytes <= size - s.offset, "'", path, "' is ", size,
                " bytes long but a tensor lies at bytes ", s.offset, "..", s.offset + s.nbytes);
    if (want) readExactly(f.fd, t.data_ptr(), want, s.offset, path);
    out.push_back(device.is_cpu() ? t : t.to(device));
  }
  return out;
}

void writeFileAtomic(const std::string& path, const std::string& prefix, const std::vector<at::Tensor>& tensors) {
  std::random_device rd;
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(rd());
  Fd f;
  f.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  TORCH_CHECK(f.fd >= 0, "cannot write '", path, "': creating the temporary file '", tmp, "' failed: ",
              std::strerror(errno));
  try {
    writeAll(f.fd, prefix.data(), prefix.size(), tmp);
    for (const auto& t0 : tensors) {
      at::Tensor t = t0.detach();
      if (!t.device().is_cpu()) t = t.to(at::kCPU);
      t = t.contiguous();
      writeAll(f.fd, t.data_ptr(), static_cast<uint64_t>(t.numel()) * t.element_size(), tmp);
    }
    TORCH_CHECK(::fsync(f.fd) == 0, sysError("cannot flush", tmp));
    ::close(f.fd);
    f.fd = -1;
    TORCH_CHECK(::rename(tmp.c_str(), path.c_str()) == 0, sysError("cannot rename the finished file into", path));
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  syncDirectoryOf(path);
}

}  // namespace tl
