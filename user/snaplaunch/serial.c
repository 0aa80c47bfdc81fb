// SPDX-License-Identifier: GPL-2.0
/*
 * The console: a 16550A UART at COM1 (I/O 0x3f8, IRQ 4), enough of it
 * for Linux's 8250 driver: transmit (to out_fd), receive (from in_fd, by
 * a reader thread), the THR-empty and receive interrupts, the FIFO bits
 * the driver probes, scratch and loopback registers.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "snaplaunch.h"
#include "util.h"

#define IER_RDI		0x01
#define IER_THRI	0x02
#define IIR_NO_INT	0x01
#define IIR_THRI	0x02
#define IIR_RDI		0x04
#define IIR_FIFO	0xc0
#define LCR_DLAB	0x80
#define LSR_DR		0x01
#define LSR_THRE	0x20
#define LSR_TEMT	0x40
#define MCR_LOOP	0x10



/* Recompute IIR and the IRQ line; lock held. */
static void update_irq(struct sl_vm *vm)
{
	struct sl_serial *s = &vm->serial;
	uint8_t iir = IIR_NO_INT;

	if ((s->ier & IER_RDI) && s->rx_len)
		iir = IIR_RDI;
	else if ((s->ier & IER_THRI) && s->thri_pending)
		iir = IIR_THRI;
	s->iir = (s->iir & IIR_FIFO) | iir;
	sl_irq_line(vm, SL_SERIAL_IRQ, iir != IIR_NO_INT);
}

void sl_serial_init(struct sl_vm *vm, int in_fd, int out_fd)
{
	struct sl_serial *s = &vm->serial;

	pthread_mutex_init(&s->lock, NULL);
	s->iir = IIR_NO_INT;
	s->lsr = LSR_THRE | LSR_TEMT;
	s->msr = 0xb0;		/* DCD DSR CTS */
	s->in_fd = in_fd;
	s->out_fd = out_fd;
}

static void emit(struct sl_serial *s, uint8_t c)
{
	ssize_t n;

	do {
		n = write(s->out_fd, &c, 1);
	} while (n < 0 && errno == EINTR);
}

/* Handle one byte of I/O at @port; false if it is not ours. */
bool sl_serial_io(struct sl_vm *vm, uint16_t port, bool out, uint8_t *data)
{
	struct sl_serial *s = &vm->serial;
	unsigned int reg = port - SL_PORT_SERIAL;
	bool dlab;

	if (port < SL_PORT_SERIAL || port > SL_PORT_SERIAL + 7)
		return false;
	pthread_mutex_lock(&s->lock);
	dlab = s->lcr & LCR_DLAB;
	if (out) {
		switch (reg) {
		case 0:
			if (dlab) {
				s->dll = *data;
			} else if (s->mcr & MCR_LOOP) {
				if (s->rx_len < sizeof(s->rx))
					s->rx[(s->rx_head + s->rx_len++) %
					      sizeof(s->rx)] = *data;
			} else {
				emit(s, *data);
				s->thri_pending = true;
			}
			break;
		case 1:
			if (dlab) {
				s->dlm = *data;
			} else {
				if (!(s->ier & IER_THRI) && (*data & IER_THRI))
					s->thri_pending = true;
				s->ier = *data & 0x0f;
			}
			break;
		case 2:
			s->iir = (*data & 1) ? (s->iir | IIR_FIFO) :
					       (s->iir & ~IIR_FIFO);
			if (*data & 0x02) {
				s->rx_len = 0;
				s->rx_head = 0;
			}
			break;
		case 3:
			s->lcr = *data;
			break;
		case 4:
			s->mcr = *data & 0x1f;
			break;
		case 7:
			s->scr = *data;
			break;
		}
	} else {
		switch (reg) {
		case 0:
			if (dlab) {
				*data = s->dll;
			} else if (s->rx_len) {
				*data = s->rx[s->rx_head];
				s->rx_head = (s->rx_head + 1) % sizeof(s->rx);
				s->rx_len--;
			} else {
				*data = 0;
			}
			break;
		case 1:
			*data = dlab ? s->dlm : s->ier;
			break;
		case 2:
			*data = s->iir;
			if ((s->iir & 0x0f) == IIR_THRI)
				s->thri_pending = false;
			break;
		case 3:
			*data = s->lcr;
			break;
		case 4:
			*data = s->mcr;
			break;
		case 5:
			*data = LSR_THRE | LSR_TEMT | (s->rx_len ? LSR_DR : 0);
			break;
		case 6:
			if (s->mcr & MCR_LOOP)
				*data = (s->mcr & 0x0c) << 4 |
					(s->mcr & 0x02) << 3 |
					(s->mcr & 0x01) << 5;
			else
				*data = s->msr;
			break;
		case 7:
			*data = s->scr;
			break;
		}
	}
	update_irq(vm);
	pthread_mutex_unlock(&s->lock);
	return true;
}

static void *reader(void *arg)
{
	struct sl_vm *vm = arg;
	struct sl_serial *s = &vm->serial;
	uint8_t buf[64];
	ssize_t n, i;

	for (;;) {
		n = read(s->in_fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return NULL;
		for (i = 0; i < n;) {
			pthread_mutex_lock(&s->lock);
			while (i < n && s->rx_len < sizeof(s->rx)) {
				s->rx[(s->rx_head + s->rx_len++) %
				      sizeof(s->rx)] = buf[i++];
			}
			update_irq(vm);
			pthread_mutex_unlock(&s->lock);
			if (i < n)
				usleep(1000);	/* the guest reads slowly */
		}
	}
}

void sl_serial_start_input(struct sl_vm *vm)
{
	pthread_t t;

	if (vm->serial.in_fd < 0)
		return;

	if (pthread_create(&t, NULL, reader, vm))
		die(EXIT_FAIL, errno, NULL, "cannot start the console reader");
	pthread_detach(t);
}

/* Device state for snapshots: the registers and pending input. */
struct serial_state {
	uint8_t ier, iir, lcr, mcr, msr, scr, dll, dlm;
	uint8_t thri_pending, pad[3];
	uint32_t rx_len;
	uint8_t rx[256];
};

size_t sl_serial_save(struct sl_vm *vm, void *buf)
{
	struct sl_serial *s = &vm->serial;
	struct serial_state st = {
		.ier = s->ier, .iir = s->iir, .lcr = s->lcr, .mcr = s->mcr,
		.msr = s->msr, .scr = s->scr, .dll = s->dll, .dlm = s->dlm,
		.thri_pending = s->thri_pending, .rx_len = s->rx_len,
	};
	unsigned int i;

	for (i = 0; i < s->rx_len; i++)
		st.rx[i] = s->rx[(s->rx_head + i) % sizeof(s->rx)];
	if (buf)
		memcpy(buf, &st, sizeof(st));
	return sizeof(st);
}

void sl_serial_load(struct sl_vm *vm, const void *buf)
{
	struct sl_serial *s = &vm->serial;
	struct serial_state st;

	memcpy(&st, buf, sizeof(st));
	s->ier = st.ier;
	s->iir = st.iir;
	s->lcr = st.lcr;
	s->mcr = st.mcr;
	s->msr = st.msr;
	s->scr = st.scr;
	s->dll = st.dll;
	s->dlm = st.dlm;
	s->thri_pending = st.thri_pending;
	s->rx_head = 0;
	s->rx_len = st.rx_len < sizeof(s->rx) ? st.rx_len : sizeof(s->rx);
	memcpy(s->rx, st.rx, s->rx_len);
}
