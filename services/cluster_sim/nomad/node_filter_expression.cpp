#include "cluster_sim/nomad/node_filter_expression.h"

#include <optional>

#include <cctype>
#include <regex>
#include <set>
#include <vector>

namespace mps::sim {

struct NodeFilterExpression::Expr {
  enum class Op { all_of, any_of, negate, equal, not_equal, matches, not_matches };
  Op op = Op::equal;
  std::vector<std::shared_ptr<const Expr>> children;
  std::string field;               // NodeClass, ... or Attributes / Meta
  std::optional<std::string> key;  // the map key for Attributes / Meta
  std::string value;
  std::shared_ptr<std::regex> pattern;
};

namespace {

using Expr = NodeFilterExpression::Expr;

struct Token {
  enum class Type { ident, string, op, lparen, rparen, lbracket, rbracket, end } type;
  std::string text;
  std::size_t pos;
};

const std::set<std::string> kFields = {
    "NodeClass", "Datacenter", "NodePool", "Status", "SchedulingEligibility", "ID", "Name"};
const std::set<std::string> kMaps = {"Attributes", "Meta"};

std::vector<Token> Tokenize(const std::string& s) {
  std::vector<Token> out;
  std::size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (c == '(' || c == ')' || c == '[' || c == ']') {
      Token::Type t = c == '('   ? Token::Type::lparen
                      : c == ')' ? Token::Type::rparen
                      : c == '[' ? Token::Type::lbracket
                                 : Token::Type::rbracket;
      out.push_back({t, std::string(1, c), i++});
    } else if ((c == '=' || c == '!') && i + 1 < s.size() && s[i + 1] == '=') {
      out.push_back({Token::Type::op, s.substr(i, 2), i});
      i += 2;
    } else if (c == '"') {
      std::string v;
      std::size_t start = i++;
      for (; i < s.size() && s[i] != '"'; ++i) {
        if (s[i] == '\\' && i + 1 < s.size()) ++i;
        v += s[i];
      }
      if (i >= s.size())
        throw FilterSyntaxError("unterminated string starting at " + std::to_string(start));
      ++i;
      out.push_back({Token::Type::string, v, start});
    } else if (c == '`') {
      std::size_t end = s.find('`', i + 1);
      if (end == std::string::npos)
        throw FilterSyntaxError("unterminated raw string at " + std::to_string(i));
      out.push_back({Token::Type::string, s.substr(i + 1, end - i - 1), i});
      i = end + 1;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      std::size_t start = i;
      while (i < s.size() &&
             (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '_' || s[i] == '.'))
        ++i;
      out.push_back({Token::Type::ident, s.substr(start, i - start), start});
    } else {
      throw FilterSyntaxError("unsupported character '" + std::string(1, c) + "' at " +
                              std::to_string(i));
    }
  }
  out.push_back({Token::Type::end, "", s.size()});
  return out;
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  std::shared_ptr<const Expr> Parse() {
    auto e = Or();
    if (Peek().type != Token::Type::end) Unexpected("end of expression");
    return e;
  }

 private:
  const Token& Peek() const { return t_[i_]; }
  const Token& Next() { return t_[i_++]; }
  bool IsWord(const char* w) const { return Peek().type == Token::Type::ident && Peek().text == w; }
  [[noreturn]] void Unexpected(const std::string& wanted) const {
    const Token& t = Peek();
    throw FilterSyntaxError(
        "expected " + wanted + " at " + std::to_string(t.pos) + ", got " +
        (t.type == Token::Type::end ? "end of expression" : "\"" + t.text + "\""));
  }

  std::shared_ptr<const Expr> Or() {
    auto first = And();
    if (!IsWord("or")) return first;
    auto e = std::make_shared<Expr>();
    e->op = Expr::Op::any_of;
    e->children.push_back(first);
    while (IsWord("or")) {
      Next();
      e->children.push_back(And());
    }
    return e;
  }

  std::shared_ptr<const Expr> And() {
    auto first = Unary();
    if (!IsWord("and")) return first;
    auto e = std::make_shared<Expr>();
    e->op = Expr::Op::all_of;
    e->children.push_back(first);
    while (IsWord("and")) {
      Next();
      e->children.push_back(Unary());
    }
    return e;
  }

  std::shared_ptr<const Expr> Unary() {
    if (IsWord("not")) {
      Next();
      auto e = std::make_shared<Expr>();
      e->op = Expr::Op::negate;
      e->children.push_back(Unary());
      return e;
    }
    if (Peek().type == Token::Type::lparen) {
      Next();
      auto e = Or();
      if (Peek().type != Token::Type::rparen) Unexpected("\")\"");
      Next();
      return e;
    }
    return Comparison();
  }

  std::shared_ptr<const Expr> Comparison() {
    if (Peek().type == Token::Type::string) {
      throw FilterSyntaxError("unsupported operator form: \"value\" in/not in Selector");
    }
    if (Peek().type != Token::Type::ident) Unexpected("a selector");
    auto e = std::make_shared<Expr>();
    e->field = Next().text;
    if (kMaps.count(e->field)) {
      if (Peek().type != Token::Type::lbracket) Unexpected("[\"key\"] after " + e->field);
      Next();
      if (Peek().type != Token::Type::string) Unexpected("a quoted key");
      e->key = Next().text;
      if (Peek().type != Token::Type::rbracket) Unexpected("\"]\"");
      Next();
    } else if (!kFields.count(e->field)) {
      throw FilterSyntaxError("unsupported selector \"" + e->field + "\"");
    }
    const Token& op = Peek();
    if (op.type == Token::Type::op) {
      e->op = op.text == "==" ? Expr::Op::equal : Expr::Op::not_equal;
      Next();
    } else if (IsWord("matches")) {
      e->op = Expr::Op::matches;
      Next();
    } else if (IsWord("not")) {
      Next();
      if (!IsWord("matches")) {
        throw FilterSyntaxError("unsupported operator \"not " + Peek().text + "\"");
      }
      Next();
      e->op = Expr::Op::not_matches;
    } else if (op.type == Token::Type::ident) {
      throw FilterSyntaxError("unsupported operator \"" + op.text + "\"");
    } else {
      Unexpected("an operator (==, !=, matches)");
    }
    if (Peek().type != Token::Type::string) Unexpected("a quoted string value");
    e->value = Next().text;
    if (e->op == Expr::Op::matches || e->op == Expr::Op::not_matches) {
      try {
        e->pattern = std::make_shared<std::regex>(e->value);
      } catch (const std::regex_error&) {
        throw FilterSyntaxError("invalid regular expression \"" + e->value + "\"");
      }
    }
    return e;
  }

  std::vector<Token> t_;
  std::size_t i_ = 0;
};

std::optional<std::string> Lookup(const nlohmann::json& node, const Expr& e) {
  auto it = node.find(e.field);
  if (it == node.end() || it->is_null()) return std::nullopt;
  if (e.key) {
    if (!it->is_object()) return std::nullopt;
    auto k = it->find(*e.key);
    if (k == it->end() || !k->is_string()) return std::nullopt;
    return k->get<std::string>();
  }
  if (!it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

bool Eval(const Expr& e, const nlohmann::json& node) {
  switch (e.op) {
    case Expr::Op::all_of:
      for (auto& c : e.children)
        if (!Eval(*c, node)) return false;
      return true;
    case Expr::Op::any_of:
      for (auto& c : e.children)
        if (Eval(*c, node)) return true;
      return false;
    case Expr::Op::negate:
      return !Eval(*e.children.front(), node);
    case Expr::Op::equal: {
      auto v = Lookup(node, e);
      return v && *v == e.value;
    }
    case Expr::Op::not_equal: {
      auto v = Lookup(node, e);
      return !v || *v != e.value;
    }
    case Expr::Op::matches: {
      auto v = Lookup(node, e);
      return v && std::regex_search(*v, *e.pattern);
    }
    case Expr::Op::not_matches: {
      auto v = Lookup(node, e);
      return !v || !std::regex_search(*v, *e.pattern);
    }
  }
  return false;
}

}  // namespace

NodeFilterExpression NodeFilterExpression::Parse(const std::string& text) {
  NodeFilterExpression f;
  f.root_ = Parser(Tokenize(text)).Parse();
  return f;
}

bool NodeFilterExpression::Matches(const nlohmann::json& node) const {
  return root_ ? Eval(*root_, node) : true;
}

}  // namespace mps::sim
