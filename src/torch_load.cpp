#include "src/torch_load.h"
#include <caffe2/serialize/inline_container.h>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <unordered_map>

namespace tl {

namespace {

// Our own errors carry the whole message; libtorch's (from the zip reader) get the file named around them.
struct LoadError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---- values the restricted unpickler builds ----

enum class Kind { None, Bool, Int, Float, Str, Bytes, Tuple, List, Dict, Global, Storage, Tensor };

struct Value;
using V = std::shared_ptr<Value>;

struct Value {
  Kind kind = Kind::None;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;         // Str and Bytes; Global: "module.name"
  std::vector<V> items;  // Tuple, List; Dict: key, value, key, value, ...
  at::Tensor tensor;     // Tensor; Storage: a flat tensor over the whole storage
  // A value placed inside another is sealed: pickles of trees (all torch.save writes) never change a
  // container after that, and refusing it rules out cycles, so `depth` stays exact and bounded and
  // freeing a value can never recurse deeply.
  bool sealed = false;
  int depth = 0;
};

constexpr int kMaxDepth = 64;
// Bounds on what a hostile pickle can make us hold. Python's pickler adds a dict's items in batches of
// 1000, so a state dict's stack stays at a few thousand values; it memoizes about six objects a tensor.
constexpr size_t kMaxStack = size_t{1} << 20;
constexpr size_t kMaxMemo = size_t{1} << 22;
// The opcodes a file may run: a pickle is stored uncompressed by torch.save, so a real one runs fewer
// opcodes than the file has bytes; a deflated record (a 39 KB file once held 40M opcodes) may not run
// more than this many per byte of the file, plus a floor for tiny files.
constexpr uint64_t kOpsPerFileByte = 16;
constexpr uint64_t kOpsFloor = uint64_t{1} << 20;

V make(Kind k) {
  auto v = std::make_shared<Value>();
  v->kind = k;
  return v;
}

// None, True and False are shared, as in Python: a pickle of nothing but None opcodes cost a whole
// Value per byte. (Marking one sealed when it is placed in a container changes nothing: it is no container.)
const V& none() {
  static const V* v = new V(make(Kind::None));
  return *v;
}
const V& boolean(bool b) {
  static const V* t = [] { auto* v = new V(make(Kind::Bool)); (*v)->b = true; return v; }();
  static const V* f = new V(make(Kind::Bool));
  return b ? *t : *f;
}

// Strict UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF): what a JavaScript string can
// hold exactly. Returns the offset of the first bad byte, or npos.
size_t invalidUtf8At(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp, min;
    if ((c & 0xe0) == 0xc0) len = 2, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0) len = 3, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0) len = 4, cp = c & 0x07, min = 0x10000;
    else return i;
    if (n - i < len) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += len;
  }
  return std::string::npos;
}

std::string describe(const Value& v) {
  switch (v.kind) {
    case Kind::None: return "None";
    case Kind::Bool: return "a bool";
    case Kind::Int: return "an int";
    case Kind::Float: return "a float";
    case Kind::Str: return "a str";
    case Kind::Bytes: return "bytes";
    case Kind::Tuple: return "a tuple of " + std::to_string(v.items.size());
    case Kind::List: return "a list of " + std::to_string(v.items.size());
    case Kind::Dict: return "a dict";
    case Kind::Global: return "the global " + v.s;
    case Kind::Storage: return "a storage";
    case Kind::Tensor: return "a tensor";
  }
  return "a value";
}

// The storage classes torch.save names in its persistent ids (legacy typed names, as PyTorch writes them).
bool storageDtype(const std::string& global, at::ScalarType* out) {
  static const std::unordered_map<std::string, at::ScalarType> kTypes = {
      {"torch.DoubleStorage", at::kDouble}, {"torch.FloatStorage", at::kFloat},
      {"torch.HalfStorage", at::kHalf},     {"torch.BFloat16Storage", at::kBFloat16},
      {"torch.LongStorage", at::kLong},     {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},   {"torch.CharStorage", at::kChar},
      {"torch.ByteStorage", at::kByte},     {"torch.BoolStorage", at::kBool},
      {"torch.UntypedStorage", at::kByte},  {"torch.storage.UntypedStorage", at::kByte},
  };
  auto it = kTypes.find(global);
  if (it == kTypes.end()) return false;
  *out = it->second;
  return true;
}

// Everything else a state dict's pickle may name. Anything not here is refused: no code is looked up.
bool knownGlobal(const std::string& g) {
  static const char* kKnown[] = {
      "collections.OrderedDict",
      "torch._utils._rebuild_tensor_v2",
      "torch._utils._rebuild_tensor",
      "torch._utils._rebuild_parameter",
      "torch._utils._rebuild_parameter_with_state",
      "torch._tensor._rebuild_from_type_v2",
      "torch.Tensor",
      "torch.nn.parameter.Parameter",
      "torch.Size",
  };
  for (const char* k : kKnown)
    if (g == k) return true;
  at::ScalarType unused;
  return storageDtype(g, &unused);
}

bool mulOverflows(int64_t a, int64_t b, int64_t* out) { return __builtin_mul_overflow(a, b, out); }
bool addOverflows(int64_t a, int64_t b, int64_t* out) { return __builtin_add_overflow(a, b, out); }

class Unpickler {
 public:
  Unpickler(const std::string& path, const uint8_t* data, size_t size,
            caffe2::serialize::PyTorchStreamReader& zip, uint64_t fileSize)
      : path_(path), p_(data), end_(data + size), begin_(data), zip_(zip),
        fileSize_(fileSize), maxOps_(kOpsFloor + kOpsPerFileByte * fileSize) {}

  V run() {
    for (uint64_t ops = 1;; ++ops) {
      const size_t at = static_cast<size_t>(p_ - begin_);
      if (ops > maxOps_)
        fail("it runs more than " + std::to_string(maxOps_) + " opcodes, far more than a state dict in a file of " +
             std::to_string(fileSize_) + " bytes needs (a compressed pickle that expands without end?)");
      const uint8_t op = u8();
      switch (op) {
        case 0x80: {  // PROTO
          const uint8_t v = u8();
          if (v > 5) fail("pickle protocol " + std::to_string(v) + " is not supported");
          break;
        }
        case 0x95: skip(8); break;  // FRAME
        case '.': {                 // STOP
          if (stack_.size() != 1 || !marks_.empty()) fail("the pickle ends with a malformed stack");
          return stack_.back();
        }
        case '(': marks_.push_back(stack_.size()); break;
        case '0': pop(); break;
        case '1': popMark(); break;
        case '2': push(top()); break;
        case 'N': push(none()); break;
        case 0x88: pushBool(true); break;
        case 0x89: pushBool(false); break;
        case 'J': {
          int32_t x;
          readRaw(&x, 4);
          pushInt(x);
          break;
        }
        case 'K': pushInt(u8()); break;
        case 'M': {
          uint16_t x;
          readRaw(&x, 2);
          pushInt(x);
          break;
        }
        case 0x8a: pushInt(readLong(u8())); break;  // LONG1
        case 0x8b: {                                // LONG4
          uint32_t n;
          readRaw(&n, 4);
          pushInt(readLong(n));
          break;
        }
        case 'G': {  // BINFLOAT, big-endian
          uint8_t b[8];
          readRaw(b, 8);
          uint64_t bits = 0;
          for (int k = 0; k < 8; ++k) bits = (bits << 8) | b[k];
          auto v = make(Kind::Float);
          std::memcpy(&v->f, &bits, 8);
          push(v);
          break;
        }
        case 'X': pushStr(Kind::Str, len32()); break;    // BINUNICODE
        case 0x8c: pushStr(Kind::Str, u8()); break;      // SHORT_BINUNICODE
        case 0x8d: pushStr(Kind::Str, len64()); break;   // BINUNICODE8
        case 'T': pushStr(Kind::Str, len32()); break;    // BINSTRING (Python 2 str)
        case 'U': pushStr(Kind::Str, u8()); break;       // SHORT_BINSTRING
        case 'B': pushStr(Kind::Bytes, len32()); break;  // BINBYTES
        case 'C': pushStr(Kind::Bytes, u8()); break;     // SHORT_BINBYTES
        case 0x8e: pushStr(Kind::Bytes, len64()); break; // BINBYTES8
        case ')': push(make(Kind::Tuple)); break;
        case 't': push(tuple(popMark())); break;
        case 0x85: push(tuple(popN(1))); break;
        case 0x86: push(tuple(popN(2))); break;
        case 0x87: push(tuple(popN(3))); break;
        case ']': push(make(Kind::List)); break;
        case 'l': {
          auto list = make(Kind::List);
          adopt(*list, popMark());
          push(list);
          break;
        }
        case 'a': {
          auto items = popN(1);
          adopt(*expect(top(), Kind::List, "APPEND"), items);
          break;
        }
        case 'e': {
          auto items = popMark();
          adopt(*expect(top(), Kind::List, "APPENDS"), items);
          break;
        }
        case '}': push(make(Kind::Dict)); break;
        case 'd': {
          auto items = popMark();
          if (items.size() % 2) fail("DICT with an odd number of items");
          auto dict = make(Kind::Dict);
          adopt(*dict, items);
          push(dict);
          break;
        }
        case 's': {
          auto items = popN(2);
          adopt(*expect(top(), Kind::Dict, "SETITEM"), items);
          break;
        }
        case 'u': {
          auto items = popMark();
          if (items.size() % 2) fail("SETITEMS with an odd number of items");
          adopt(*expect(top(), Kind::Dict, "SETITEMS"), items);
          break;
        }
        case 'c': {  // GLOBAL
          std::string module = line();
          std::string name = line();
          push(global(module + "." + name));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          auto mn = popN(2);
          if (mn[0]->kind != Kind::Str || mn[1]->kind != Kind::Str) fail("STACK_GLOBAL needs two strings");
          push(global(mn[0]->s + "." + mn[1]->s));
          break;
        }
        case 'R': {  // REDUCE
          auto fa = popN(2);
          push(call(*fa[0], fa[1]));
          break;
        }
        case 'b': {  // BUILD: only the state PyTorch attaches to dicts (state_dict()._metadata) and tensors
          pop();
          const Kind k = top()->kind;
          if (k != Kind::Dict && k != Kind::Tensor) fail("BUILD on " + describe(*top()) + " is not supported");
          break;
        }
        case 'Q': push(persistent(*pop())); break;  // BINPERSID
        case 'q': memoPut(u8()); break;
        case 'r': {
          uint32_t i;
          readRaw(&i, 4);
          memoPut(i);
          break;
        }
        case 0x94: memoPut(static_cast<uint32_t>(memo_.size())); break;  // MEMOIZE
        case 'h': push(memo(u8())); break;
        case 'j': {
          uint32_t i;
          readRaw(&i, 4);
          push(memo(i));
          break;
        }
        default: {
          char hex[8];
          std::snprintf(hex, sizeof hex, "0x%02x", op);
          fail(std::string("pickle opcode ") + hex + " at byte " + std::to_string(at) +
               " is not supported (only what torch.save writes for tensors is read)");
        }
      }
    }
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw LoadError("cannot load '" + path_ + "' as a torch.save state dict: data.pkl: " + why);
  }

  // ---- reading bytes ----
  void need(uint64_t n) const {
    if (n > static_cast<uint64_t>(end_ - p_)) fail("truncated (needs " + std::to_string(n) + " more bytes)");
  }
  uint8_t u8() {
    need(1);
    return *p_++;
  }
  void skip(uint64_t n) {
    need(n);
    p_ += n;
  }
  void readRaw(void* dst, size_t n) {  // little-endian host, like the files
    need(n);
    std::memcpy(dst, p_, n);
    p_ += n;
  }
  uint64_t len32() {
    uint32_t n;
    readRaw(&n, 4);
    return n;
  }
  uint64_t len64() {
    uint64_t n;
    readRaw(&n, 8);
    return n;
  }
  int64_t readLong(uint64_t n) {
    if (n > 8) fail("an integer of " + std::to_string(n) + " bytes does not fit in 64 bits");
    need(n);
    uint64_t x = 0;
    for (uint64_t k = 0; k < n; ++k) x |= static_cast<uint64_t>(p_[k]) << (8 * k);
    if (n > 0 && n < 8 && (p_[n - 1] & 0x80)) x |= ~uint64_t(0) << (8 * n);  // sign-extend
    p_ += n;
    return static_cast<int64_t>(x);
  }
  std::string line() {
    const uint8_t* nl = static_cast<const uint8_t*>(std::memchr(p_, '\n', static_cast<size_t>(end_ - p_)));
    if (nl == nullptr) fail("truncated (a GLOBAL without its newline)");
    std::string s(reinterpret_cast<const char*>(p_), static_cast<size_t>(nl - p_));
    p_ = nl + 1;
    return s;
  }

  // ---- the stack ----
  void push(V v) {
    if (stack_.size() >= kMaxStack)
      fail("its stack grows past " + std::to_string(kMaxStack) + " values (a state dict needs a few thousand)");
    stack_.push_back(std::move(v));
  }
  void pushBool(bool b) { push(boolean(b)); }
  void memoPut(uint32_t i) {
    const V& v = top();
    if (memo_.size() >= kMaxMemo && memo_.find(i) == memo_.end())
      fail("its memo grows past " + std::to_string(kMaxMemo) + " entries (a state dict needs a few per tensor)");
    memo_[i] = v;
  }
  void pushInt(int64_t i) {
    auto v = make(Kind::Int);
    v->i = i;
    push(v);
  }
  void pushStr(Kind k, uint64_t n) {
    need(n);
    auto v = make(k);
    v->s.assign(reinterpret_cast<const char*>(p_), static_cast<size_t>(n));
    if (k == Kind::Str) {
      // torch.load decodes strs as UTF-8 and raises on bad bytes; passing them on would turn a tensor's
      // name into U+FFFD replacement characters.
      const size_t bad = invalidUtf8At(v->s);
      if (bad != std::string::npos)
        fail("a str at byte " + std::to_string(static_cast<size_t>(p_ - begin_)) + " is not valid UTF-8 (byte " +
             std::to_string(bad) + " of it)");
    }
    p_ += n;
    push(v);
  }
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  const V& top() const {
    if (stack_.size() <= floor()) fail("the stack is empty where a value is needed");
    return stack_.back();
  }
  V pop() {
    V v = top();
    stack_.pop_back();
    return v;
  }
  std::vector<V> popN(size_t n) {
    if (stack_.size() < floor() + n) fail("the stack holds fewer values than an opcode needs");
    std::vector<V> out(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
    stack_.resize(stack_.size() - n);
    return out;
  }
  std::vector<V> popMark() {
    if (marks_.empty()) fail("an opcode needs a MARK that is not there");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<V> out(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return out;
  }
  V memo(uint32_t i) const {
    auto it = memo_.find(i);
    if (it == memo_.end()) fail("memo entry " + std::to_string(i) + " is read before it is written");
    return it->second;
  }

  // ---- containers ----
  Value* expect(const V& v, Kind k, const char* op) const {
    if (v->kind != k) fail(std::string(op) + " on " + describe(*v));
    return v.get();
  }
  void adopt(Value& parent, const std::vector<V>& children) {
    // (only containers are sealed: the shared None/True/False are never written, from any thread)
    for (const auto& c : children)
      if (c->kind == Kind::Tuple || c->kind == Kind::List || c->kind == Kind::Dict) c->sealed = true;
    if (parent.sealed) fail("a container is changed after it was placed in another (not a plain state dict)");
    for (const auto& c : children) {
      parent.depth = std::max(parent.depth, c->depth + 1);
      parent.items.push_back(c);
    }
    if (parent.depth > kMaxDepth) fail("values are nested more than " + std::to_string(kMaxDepth) + " deep");
  }
  V tuple(const std::vector<V>& items) {
    auto t = make(Kind::Tuple);
    adopt(*t, items);
    return t;
  }

  // ---- globals and what calling them builds ----
  V global(const std::string& name) {
    if (!knownGlobal(name))
      fail("it names the global '" + name +
           "', which a state dict of tensors does not need (no Python code is looked up or run)");
    auto g = make(Kind::Global);
    g->s = name;
    return g;
  }

  const std::vector<V>& args(const V& a, size_t lo, size_t hi, const std::string& fn) const {
    if (a->kind != Kind::Tuple || a->items.size() < lo || a->items.size() > hi)
      fail(fn + " called with " + describe(*a));
    return a->items;
  }

  V call(const Value& fn, const V& a) {
    if (fn.kind != Kind::Global) fail("REDUCE calls " + describe(fn) + ", not a global");
    const std::string& g = fn.s;
    if (g == "collections.OrderedDict") {
      args(a, 0, 0, g);
      return make(Kind::Dict);
    }
    if (g == "torch.Size") {
      const auto& x = args(a, 1, 1, g);
      if (x[0]->kind != Kind::Tuple) fail("torch.Size of " + describe(*x[0]));
      return x[0];
    }
    if (g == "torch._utils._rebuild_tensor_v2") {
      const auto& x = args(a, 6, 7, g);  // storage, offset, size, stride, requires_grad, hooks[, metadata]
      return rebuild(*x[0], *x[1], *x[2], *x[3]);
    }
    if (g == "torch._utils._rebuild_tensor") {
      const auto& x = args(a, 4, 4, g);
      return rebuild(*x[0], *x[1], *x[2], *x[3]);
    }
    if (g == "torch._utils._rebuild_parameter" || g == "torch._utils._rebuild_parameter_with_state") {
      const auto& x = args(a, 3, 4, g);  // data, requires_grad, hooks[, state]
      if (x[0]->kind != Kind::Tensor) fail(g + " of " + describe(*x[0]));
      return x[0];
    }
    if (g == "torch._tensor._rebuild_from_type_v2") {
      const auto& x = args(a, 4, 4, g);  // func, new_type, args, state
      if (x[1]->kind != Kind::Global || (x[1]->s != "torch.Tensor" && x[1]->s != "torch.nn.parameter.Parameter"))
        fail("a tensor of type " + describe(*x[1]) + " is not supported");
      V r = call(*x[0], x[2]);
      if (r->kind != Kind::Tensor) fail(g + " built " + describe(*r));
      return r;
    }
    fail("the global " + g + " cannot be called");
  }

  // ('storage', storage type, key, location, numel): the bytes are the zip record data/<key>.
  V persistent(const Value& pid) {
    if (pid.kind != Kind::Tuple || pid.items.size() != 5) fail("a persistent id must be a 5-tuple, got " + describe(pid));
    const auto& x = pid.items;
    if ((x[0]->kind != Kind::Str && x[0]->kind != Kind::Bytes) || x[0]->s != "storage")
      fail("only storages may be persistent ids");
    at::ScalarType dtype;
    if (x[1]->kind != Kind::Global || !storageDtype(x[1]->s, &dtype)) fail("unsupported storage type " + describe(*x[1]));
    if (x[2]->kind != Kind::Str || x[3]->kind != Kind::Str || x[4]->kind != Kind::Int || x[4]->i < 0)
      fail("malformed storage id for key " + (x[2]->kind == Kind::Str ? "'" + x[2]->s + "'" : describe(*x[2])));
    const std::string& key = x[2]->s;
    const int64_t numel = x[4]->i;
    const int64_t itemsize = static_cast<int64_t>(c10::elementSize(dtype));
    int64_t nbytes;
    if (mulOverflows(numel, itemsize, &nbytes)) fail("storage '" + key + "' is impossibly large");

    c10::Storage bytes;
    auto it = storages_.find(key);
    if (it != storages_.end()) {
      bytes = it->second;
    } else if (nbytes == 0) {
      bytes = at::empty({0}, at::TensorOptions().dtype(at::kByte)).storage();
    } else {
      const std::string record = "data/" + key;
      if (!zip_.hasRecord(record)) fail("storage '" + key + "' has no record " + record + " in the archive");
      auto rec = zip_.getRecord(record);
      bytes = c10::Storage(c10::Storage::use_byte_size_t(), static_cast<int64_t>(std::get<1>(rec)),
                           std::move(std::get<0>(rec)), /*allocator=*/nullptr, /*resizable=*/false);
      storages_[key] = bytes;
    }
    if (static_cast<int64_t>(bytes.nbytes()) < nbytes)
      fail("storage '" + key + "' needs " + std::to_string(nbytes) + " bytes but its record holds " +
           std::to_string(bytes.nbytes()));
    auto v = make(Kind::Storage);
    v->tensor = at::empty({0}, at::TensorOptions().dtype(dtype)).set_(bytes, 0, {numel}, {1});
    return v;
  }

  std::vector<int64_t> ints(const Value& t, const char* what) const {
    if (t.kind != Kind::Tuple) fail(std::string("a tensor's ") + what + " must be a tuple, got " + describe(t));
    std::vector<int64_t> out;
    for (const auto& e : t.items) {
      if (e->kind != Kind::Int || e->i < 0)
        fail(std::string("a tensor's ") + what + " must hold non-negative ints");
      out.push_back(e->i);
    }
    return out;
  }

  V rebuild(const Value& storage, const Value& offset, const Value& sizeT, const Value& strideT) {
    if (storage.kind != Kind::Storage) fail("a tensor is built from " + describe(storage) + ", not a storage");
    if (offset.kind != Kind::Int || offset.i < 0) fail("a tensor's storage offset must be a non-negative int");
    auto size = ints(sizeT, "size");
    auto stride = ints(strideT, "stride");
    if (size.size() != stride.size()) fail("a tensor's size and stride differ in length");
    const int64_t avail = storage.tensor.numel();
    int64_t numel = 1;
    int64_t last = offset.i;  // the largest element index the tensor reaches
    for (size_t d = 0; d < size.size(); ++d) {
      int64_t span;
      if (mulOverflows(numel, size[d], &numel)) fail("a tensor's size overflows");
      if (size[d] > 0 && (mulOverflows(size[d] - 1, stride[d], &span) || addOverflows(last, span, &last)))
        fail("a tensor's extent overflows");
    }
    if (numel > 0 ? last >= avail : offset.i > avail)
      fail("a tensor of size " + c10::str(at::IntArrayRef(size)) + " at offset " + std::to_string(offset.i) +
           " runs past its storage of " + std::to_string(avail) + " elements");
    auto v = make(Kind::Tensor);
    v->tensor = at::empty({0}, storage.tensor.options()).set_(storage.tensor.storage(), offset.i, size, stride);
    return v;
  }

  std::string path_;
  const uint8_t* p_;
  const uint8_t* end_;
  const uint8_t* begin_;
  caffe2::serialize::PyTorchStreamReader& zip_;
  uint64_t fileSize_;
  uint64_t maxOps_;
  std::vector<V> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, V> memo_;
  std::unordered_map<std::string, c10::Storage> storages_;
};

// The first bytes tell a zip (PyTorch >= 1.6) from the legacy format and from anything else. Returns the
// file's size.
uint64_t checkMagic(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw LoadError("cannot open '" + path + "': " + std::strerror(errno));
  unsigned char m[4] = {0, 0, 0, 0};
  const size_t n = std::fread(m, 1, 4, f);
  const bool failed = std::ferror(f) != 0;
  int err = errno;
  long size = -1;
  if (!failed && std::fseek(f, 0, SEEK_END) == 0) size = std::ftell(f);
  if (size < 0) err = errno;
  std::fclose(f);
  if (failed) throw LoadError("cannot read '" + path + "': " + std::strerror(err));
  if (n == 4 && m[0] == 'P' && m[1] == 'K' && m[2] == 3 && m[3] == 4) {
    if (size < 0) throw LoadError("cannot read '" + path + "': " + std::strerror(err));
    return static_cast<uint64_t>(size);
  }
  if (n >= 2 && m[0] == 0x80 && m[1] <= 5)
    throw LoadError("cannot load '" + path +
                    "': it is in the legacy torch.save format of PyTorch < 1.6, which is not supported; "
                    "re-save it with a newer PyTorch or convert it to safetensors");
  throw LoadError("cannot load '" + path + "': it is not a torch.save file (no zip archive)");
}

// The uncompressed size that the archive's central directory gives its <dir>/data.pkl, read before
// libtorch inflates the record into memory: a small deflated file can name gigabytes. Nothing when it
// cannot be read here (zip64, an odd layout): libtorch's reader then has the last word, and the opcode
// budget still bounds the work.
c10::optional<uint64_t> pickleSizeInDirectory(const std::string& path, uint64_t fileSize) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return c10::nullopt;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> closer(f, std::fclose);
  auto read = [&](uint64_t at, uint64_t n, std::string* out) {
    out->resize(n);
    return std::fseek(f, static_cast<long>(at), SEEK_SET) == 0 && std::fread(&(*out)[0], 1, n, f) == n;
  };
  auto u16 = [](const std::string& b, size_t i) { return uint32_t(uint8_t(b[i])) | uint32_t(uint8_t(b[i + 1])) << 8; };
  auto u32 = [&](const std::string& b, size_t i) { return u16(b, i) | u16(b, i + 2) << 16; };
  const uint64_t tail = std::min<uint64_t>(fileSize, 22 + 65535);  // the end record and its comment
  std::string end;
  if (tail < 22 || !read(fileSize - tail, tail, &end)) return c10::nullopt;
  size_t e = end.size() - 22;
  while (!(end[e] == 'P' && end[e + 1] == 'K' && end[e + 2] == 5 && end[e + 3] == 6)) {
    if (e == 0) return c10::nullopt;
    --e;
  }
  const uint64_t cdSize = u32(end, e + 12), cdOffset = u32(end, e + 16);
  if (cdOffset == 0xffffffffu || cdSize > (uint64_t{64} << 20) || cdOffset + cdSize > fileSize) return c10::nullopt;
  std::string cd;
  if (!read(cdOffset, cdSize, &cd)) return c10::nullopt;
  for (size_t p = 0; p + 46 <= cd.size() && u32(cd, p) == 0x02014b50u;) {
    const uint32_t size = u32(cd, p + 24), nameLen = u16(cd, p + 28);
    if (p + 46 + nameLen > cd.size()) return c10::nullopt;
    const std::string name = cd.substr(p + 46, nameLen);
    const size_t slash = name.find('/');
    if (slash != std::string::npos && name.compare(slash, std::string::npos, "/data.pkl") == 0)
      return size == 0xffffffffu ? c10::nullopt : c10::optional<uint64_t>(size);
    p += 46 + nameLen + u16(cd, p + 30) + u16(cd, p + 32);
  }
  return c10::nullopt;
}

}  // namespace

NamedTensors loadTorchStateDict(const std::string& path, const at::Device& device) {
  const uint64_t fileSize = checkMagic(path);
  V root;
  try {
    caffe2::serialize::PyTorchStreamReader zip(path);
    if (zip.hasRecord("byteorder")) {
      auto rec = zip.getRecord("byteorder");
      std::string order(static_cast<const char*>(std::get<0>(rec).get()), std::get<1>(rec));
      if (order != "little")
        throw LoadError("cannot load '" + path + "': its tensors are stored " + order +
                        "-endian; only little-endian files are supported");
    }
    if (!zip.hasRecord("data.pkl")) throw LoadError("cannot load '" + path + "': the archive has no data.pkl");
    const auto pklSize = pickleSizeInDirectory(path, fileSize);
    const uint64_t maxPkl = kOpsFloor + kOpsPerFileByte * fileSize;  // a byte is at most an opcode
    if (pklSize && *pklSize > maxPkl)
      throw LoadError("cannot load '" + path + "': its data.pkl expands to " + std::to_string(*pklSize) +
                      " bytes, far more than a state dict in a file of " + std::to_string(fileSize) +
                      " bytes needs (at most " + std::to_string(maxPkl) + "; a compressed pickle that expands without end?)");
    auto pkl = zip.getRecord("data.pkl");
    Unpickler u(path, static_cast<const uint8_t*>(std::get<0>(pkl).get()), std::get<1>(pkl), zip, fileSize);
    root = u.run();
  } catch (const LoadError&) {
    throw;
  } catch (const c10::Error& e) {
    throw LoadError("cannot load '" + path + "' as a torch.save file: " + e.what_without_backtrace());
  } catch (const std::bad_alloc&) {
    throw LoadError("cannot load '" + path + "': out of memory while reading it");
  }

  const std::string expected = "expected a state dict of tensors (a dict of str -> tensor) in '" + path + "'";
  if (root->kind != Kind::Dict) throw LoadError(expected + ", found " + describe(*root));
  NamedTensors out;
  std::unordered_map<std::string, size_t> index;  // a repeated key keeps its first place and last value
  for (size_t k = 0; k + 1 < root->items.size(); k += 2) {
    const Value& key = *root->items[k];
    const Value& val = *root->items[k + 1];
    if (key.kind != Kind::Str) throw LoadError(expected + ", found a dict with a key that is " + describe(key));
    if (val.kind != Kind::Tensor)
      throw LoadError(expected + ", found a dict whose value for '" + key.s + "' is " + describe(val));
    auto it = index.find(key.s);
    if (it != index.end()) {
      out.tensors[it->second] = val.tensor;
      continue;
    }
    index.emplace(key.s, out.names.size());
    out.names.push_back(key.s);
    out.tensors.push_back(val.tensor);
  }
  root.reset();
  if (!device.is_cpu())
    for (auto& t : out.tensors) t = t.to(device);
  return out;
}

}  // namespace tl
