package actors

// deque is a double-ended queue on a ring buffer that grows by doubling. Its size is a power of
// two, so that positions wrap with a mask rather than a division. The zero value is an empty
// deque.
type deque[T any] struct {
	buf   []T
	head  int
	count int
}

func (q *deque[T]) len() int { return q.count }

func (q *deque[T]) grow() {
	n := len(q.buf) * 2
	if n == 0 {
		n = 16
	}
	buf := make([]T, n)
	for i := 0; i < q.count; i++ {
		buf[i] = q.buf[(q.head+i)&(len(q.buf)-1)]
	}
	q.buf, q.head = buf, 0
}

func (q *deque[T]) pushBack(v T) {
	if q.count == len(q.buf) {
		q.grow()
	}
	q.buf[(q.head+q.count)&(len(q.buf)-1)] = v
	q.count++
}

func (q *deque[T]) pushFront(v T) {
	if q.count == len(q.buf) {
		q.grow()
	}
	q.head = (q.head - 1) & (len(q.buf) - 1)
	q.buf[q.head] = v
	q.count++
}

func (q *deque[T]) popFront() T {
	var zero T
	v := q.buf[q.head]
	q.buf[q.head] = zero
	q.head = (q.head + 1) & (len(q.buf) - 1)
	q.count--
	return v
}

// front returns a pointer to the element at the front (the deque must not be empty).
func (q *deque[T]) front() *T { return q.ref(0) }

// ref returns a pointer to the i-th element from the front.
func (q *deque[T]) ref(i int) *T { return &q.buf[(q.head+i)&(len(q.buf)-1)] }

// at returns the i-th element from the front.
func (q *deque[T]) at(i int) T { return q.buf[(q.head+i)&(len(q.buf)-1)] }

// drain removes and returns every element, front first.
func (q *deque[T]) drain() []T {
	out := make([]T, q.count)
	for i := range out {
		out[i] = q.popFront()
	}
	q.head = 0
	return out
}
