#include "cloister/attestation/snp/product.h"

#include <algorithm>
#include <cctype>
#include <string>

namespace cloister::attestation::snp {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::string_view product_name(Product product) {
  switch (product) {
    case Product::kMilan:
      return "Milan";
    case Product::kGenoa:
      return "Genoa";
    case Product::kTurin:
      return "Turin";
    case Product::kVenice:
      return "Venice";
  }
  return "unknown";
}

Result<Product> product_from_name(std::string_view name) {
  for (Product p : {Product::kMilan, Product::kGenoa, Product::kTurin, Product::kVenice})
    if (iequals(name, product_name(p))) return p;
  if (iequals(name, "Bergamo") || iequals(name, "Siena")) return Product::kGenoa;
  return Error("unknown AMD product '" + std::string(name) +
               "' (expected Milan, Genoa, Bergamo, Siena, Turin or Venice)");
}

std::optional<Product> product_from_cpuid(std::uint8_t family, std::uint8_t model) {
  if (family == 0x19) {
    if (model <= 0x0F) return Product::kMilan;
    if (model <= 0x1F) return Product::kGenoa;
    if (model >= 0xA0 && model <= 0xAF) return Product::kGenoa;
    return std::nullopt;
  }
  if (family == 0x1A) {
    if (model <= 0x11) return Product::kTurin;
    if ((model >= 0x50 && model <= 0x57) || (model >= 0x90 && model <= 0xAF) ||
        (model >= 0xC0 && model <= 0xC7)) {
      return Product::kVenice;
    }
  }
  return std::nullopt;
}

Result<Product> product_from_vek_product_name(std::string_view name) {
  auto dash = name.find('-');
  auto base = name.substr(0, dash);
  auto product = product_from_name(base);
  if (!product)
    return Error("certificate productName '" + std::string(name) + "' is not an AMD product");
  return product;
}

bool uses_fmc_tcb_layout(Product product) {
  return product == Product::kTurin || product == Product::kVenice;
}

}  // namespace cloister::attestation::snp
