// Warm-up for the read-only Go build cache the sandbox's go and go_test modes use
// (GOCACHE, built by install-toolchains.sh): compiling this test once, as root, fills the
// cache with the standard packages and testify that programs commonly import, so a run
// builds only its own package. Programs can read the cache but never write it.
package main

import (
	"bufio"
	"container/heap"
	"container/list"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"math/rand"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var _ = []interface{}{bufio.NewReader, heap.Init, list.New, json.Marshal, fmt.Println, math.Abs,
	big.NewInt, rand.Intn, os.Exit, regexp.MustCompile, sort.Ints, strconv.Itoa, strings.Split,
	time.Now, unicode.IsDigit}

func TestWarm(t *testing.T) {
	assert.Equal(t, 1, 1)
	require.True(t, true)
}
