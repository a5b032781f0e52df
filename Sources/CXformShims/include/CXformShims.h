#ifndef CXFORM_SHIMS_H
#define CXFORM_SHIMS_H
// Linux headers that Glibc's Swift module does not export. Built with _GNU_SOURCE.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/file.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>
#include <fcntl.h>

#endif
