package params

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// VarType is a parameter's type as pg_settings.vartype names it.
type VarType string

// The parameter types of PostgreSQL.
const (
	TypeBool    VarType = "bool"
	TypeInteger VarType = "integer"
	TypeReal    VarType = "real"
	TypeString  VarType = "string"
	TypeEnum    VarType = "enum"
)

// Context is when a parameter can change, as pg_settings.context names it.
type Context string

// The contexts of PostgreSQL, from fixed to freely settable.
const (
	ContextInternal         Context = "internal"   // fixed at build or initdb
	ContextPostmaster       Context = "postmaster" // needs a restart
	ContextSighup           Context = "sighup"     // needs a reload
	ContextSuperuserBackend Context = "superuser-backend"
	ContextBackend          Context = "backend"
	ContextSuperuser        Context = "superuser"
	ContextUser             Context = "user"
)

// Row is one row of pg_settings as text (NULL as ""), the input a catalog is built from.
type Row struct {
	Name      string
	Setting   string
	Unit      string
	Category  string
	ShortDesc string
	Context   string
	VarType   string
	MinVal    string
	MaxVal    string
	EnumVals  []string
	BootVal   string
	ResetVal  string
}

// Param describes one parameter of one major version.
type Param struct {
	Name      string  `json:"name"`
	Context   Context `json:"context"`
	Type      VarType `json:"vartype"`
	Unit      string  `json:"unit,omitempty"` // base unit: "kB", "8kB", "ms", ...
	Category  string  `json:"category,omitempty"`
	ShortDesc string  `json:"short_desc,omitempty"`
	// Min and Max bound integer and real values, in base units.
	Min float64 `json:"min_val,omitempty"`
	Max float64 `json:"max_val,omitempty"`
	// EnumVals are the values pg_settings lists for an enum.
	EnumVals []string `json:"enumvals,omitempty"`
	// EnumAliases are further spellings the server accepts for an enum without listing
	// them (e.g. "on" for synchronous_commit), lower case, mapped to the value they mean.
	EnumAliases map[string]string `json:"enum_aliases,omitempty"`
	// Refused are values of the right type the server still refuses, because of how it
	// was built (bonjour "on" without Bonjour support), with its message.
	Refused  map[string]string `json:"refused_values,omitempty"`
	BootVal  string            `json:"boot_val"`
	ResetVal string            `json:"reset_val"`

	unit baseUnit
}

// RestartNeeded reports whether a change takes effect only after a restart.
func (p Param) RestartNeeded() bool { return p.Context == ContextPostmaster }

// Catalog is the parameter catalog of one PostgreSQL version. It is immutable once built
// and safe for concurrent use.
type Catalog struct {
	VersionNum int     `json:"server_version_num"` // e.g. 150018
	Params     []Param `json:"parameters"`         // sorted by name

	index map[string]int // lower-case name -> position in Params
}

// Major returns the major version (15 for 150018).
func (c *Catalog) Major() int { return c.VersionNum / 10000 }

// NewCatalog builds a catalog of version versionNum (server_version_num) from params.
func NewCatalog(versionNum int, params []Param) (*Catalog, error) {
	if versionNum < 130000 {
		return nil, fmt.Errorf("%w: server_version_num %d (need PostgreSQL 13 or later)", ErrCatalog, versionNum)
	}
	c := &Catalog{VersionNum: versionNum, Params: slices.Clone(params), index: make(map[string]int, len(params))}
	slices.SortFunc(c.Params, func(a, b Param) int { return strings.Compare(a.Name, b.Name) })
	for k := range c.Params {
		p := &c.Params[k]
		u, err := parseBaseUnit(p.Unit)
		if err != nil {
			return nil, fmt.Errorf("%w: parameter %s: %w", ErrCatalog, p.Name, err)
		}
		p.unit = u
		key := strings.ToLower(p.Name)
		if _, dup := c.index[key]; dup || p.Name == "" {
			return nil, fmt.Errorf("%w: duplicate or empty parameter name %q", ErrCatalog, p.Name)
		}
		c.index[key] = k
	}
	return c, nil
}

// CatalogFromRows builds a catalog from the rows of pg_settings of a server of version
// versionNum.
func CatalogFromRows(versionNum int, rows []Row) (*Catalog, error) {
	ps := make([]Param, 0, len(rows))
	for _, r := range rows {
		p, err := paramFromRow(r)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return NewCatalog(versionNum, ps)
}

func paramFromRow(r Row) (Param, error) {
	p := Param{
		Name: r.Name, Context: Context(r.Context), Type: VarType(r.VarType), Unit: r.Unit,
		Category: r.Category, ShortDesc: r.ShortDesc, EnumVals: slices.Clone(r.EnumVals),
		BootVal: r.BootVal, ResetVal: r.ResetVal,
	}
	if len(p.EnumVals) == 0 {
		p.EnumVals = nil
	}
	switch p.Type {
	case TypeInteger, TypeReal:
		lo, err1 := parseBound(r.MinVal)
		hi, err2 := parseBound(r.MaxVal)
		if err1 != nil || err2 != nil {
			return p, fmt.Errorf("%w: parameter %s: range %q .. %q", ErrCatalog, r.Name, r.MinVal, r.MaxVal)
		}
		p.Min, p.Max = lo, hi
	case TypeBool, TypeString, TypeEnum:
	default:
		return p, fmt.Errorf("%w: parameter %s: vartype %q", ErrCatalog, r.Name, r.VarType)
	}
	return p, nil
}

// parseBound reads pg_settings.min_val/max_val. Reals are printed with six significant
// digits, so DBL_MAX shows as 1.79769e+308: that text is taken as DBL_MAX itself.
func parseBound(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	if math.Abs(v) >= 1.79769e+308 {
		return math.Copysign(math.MaxFloat64, v), nil
	}
	return v, nil
}

// Lookup finds a parameter by name, case-insensitively.
func (c *Catalog) Lookup(name string) (Param, bool) {
	k, ok := c.index[strings.ToLower(name)]
	if !ok {
		return Param{}, false
	}
	return c.Params[k], true
}

// Names returns every parameter name, sorted.
func (c *Catalog) Names() []string {
	out := make([]string, len(c.Params))
	for k, p := range c.Params {
		out[k] = p.Name
	}
	return out
}
