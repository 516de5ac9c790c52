// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suite for what the user sets (hint_params.c): the validation of the
 * module parameters, and how Firecracker is recognised.
 */

#include <kunit/test.h>
#include <linux/moduleparam.h>

#include "virtio_balloon_internal.h"

/* What a parameter holds before a test tries to change it. */
#define VB_TEST_OLD	3U

/* Set @val through @ops on a variable holding VB_TEST_OLD. */
static int vb_set(const struct kernel_param_ops *ops, const char *val,
		  unsigned int *v)
{
	struct kernel_param kp = {
		.name = "vb_test",
		.ops = ops,
		.arg = v,
	};

	*v = VB_TEST_OLD;
	return ops->set(val, &kp);
}

static void vb_expect_rejected(struct kunit *test,
			       const struct kernel_param_ops *ops,
			       const char *val)
{
	unsigned int v;

	KUNIT_EXPECT_EQ_MSG(test, vb_set(ops, val, &v), -EINVAL,
			    "'%s' accepted", val);
	KUNIT_EXPECT_EQ_MSG(test, v, VB_TEST_OLD, "'%s' changed the value",
			    val);
}

static void vb_expect_accepted(struct kunit *test,
			       const struct kernel_param_ops *ops,
			       const char *val, unsigned int want)
{
	unsigned int v;

	KUNIT_EXPECT_EQ_MSG(test, vb_set(ops, val, &v), 0, "'%s' refused", val);
	KUNIT_EXPECT_EQ_MSG(test, v, want, "'%s'", val);
}

static void min_order_accepts_every_page_order(struct kunit *test)
{
	char val[16];
	int order;

	for (order = 0; order < NR_PAGE_ORDERS; order++) {
		snprintf(val, sizeof(val), "%d", order);
		vb_expect_accepted(test, &vb_min_order_ops, val, order);
	}
	/* What sysfs hands over when written with echo. */
	vb_expect_accepted(test, &vb_min_order_ops, "1\n", 1);
}

static void min_order_rejects_orders_past_the_largest(struct kunit *test)
{
	char val[16];

	snprintf(val, sizeof(val), "%d", NR_PAGE_ORDERS);
	vb_expect_rejected(test, &vb_min_order_ops, val);
	snprintf(val, sizeof(val), "%d", NR_PAGE_ORDERS + 1);
	vb_expect_rejected(test, &vb_min_order_ops, val);
	vb_expect_rejected(test, &vb_min_order_ops, "-1");
	vb_expect_rejected(test, &vb_min_order_ops, "4294967295");
	vb_expect_rejected(test, &vb_min_order_ops, "4294967296");
}

static void budget_accepts_one_to_max(struct kunit *test)
{
	char val[16];

	vb_expect_accepted(test, &vb_budget_ops, "1", 1);
	vb_expect_accepted(test, &vb_budget_ops, "0x80", 0x80);
	vb_expect_accepted(test, &vb_budget_ops, "64\n", 64);
	snprintf(val, sizeof(val), "%u", VB_HINT_BUDGET_MAX);
	vb_expect_accepted(test, &vb_budget_ops, val, VB_HINT_BUDGET_MAX);
}

static void budget_rejects_zero_and_above_max(struct kunit *test)
{
	char val[16];

	vb_expect_rejected(test, &vb_budget_ops, "0");
	snprintf(val, sizeof(val), "%u", VB_HINT_BUDGET_MAX + 1);
	vb_expect_rejected(test, &vb_budget_ops, val);
	vb_expect_rejected(test, &vb_budget_ops, "-1");
	vb_expect_rejected(test, &vb_budget_ops, "4294967297");
	vb_expect_rejected(test, &vb_budget_ops, "99999999999999999999999");
}

static void params_reject_garbage(struct kunit *test)
{
	static const char * const garbage[] = {
		"", "\n", "abc", "2abc", "0x", "+", "-", " 2", "2 2", "1.5",
		"2\n\n", "0b1", "2k",
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(garbage); i++) {
		vb_expect_rejected(test, &vb_min_order_ops, garbage[i]);
		vb_expect_rejected(test, &vb_budget_ops, garbage[i]);
	}
}

static void params_read_back_what_was_set(struct kunit *test)
{
	char *buf = kunit_kzalloc(test, PAGE_SIZE, GFP_KERNEL);
	struct kernel_param kp = { .name = "vb_test" };
	unsigned int v;

	KUNIT_ASSERT_NOT_NULL(test, buf);
	kp.arg = &v;
	KUNIT_ASSERT_EQ(test, vb_set(&vb_budget_ops, "17", &v), 0);
	KUNIT_EXPECT_GT(test, vb_budget_ops.get(buf, &kp), 0);
	KUNIT_EXPECT_STREQ(test, strim(buf), "17");
	KUNIT_ASSERT_EQ(test, vb_set(&vb_min_order_ops, "2", &v), 0);
	KUNIT_EXPECT_GT(test, vb_min_order_ops.get(buf, &kp), 0);
	KUNIT_EXPECT_STREQ(test, strim(buf), "2");
}

static void fence_mib_accepts_powers_of_two_from_the_largest_block(struct kunit *test)
{
	unsigned int mib;
	char val[16];

	for (mib = VB_HINT_FENCE_MIB_MIN; mib <= VB_HINT_FENCE_MIB_MAX; mib *= 2) {
		snprintf(val, sizeof(val), "%u", mib);
		vb_expect_accepted(test, &vb_fence_mib_ops, val, mib);
	}
	vb_expect_accepted(test, &vb_fence_mib_ops, "1024\n", 1024);
}

static void fence_mib_rejects_other_sizes(struct kunit *test)
{
	char val[16];

	vb_expect_rejected(test, &vb_fence_mib_ops, "0");
	vb_expect_rejected(test, &vb_fence_mib_ops, "1000");
	vb_expect_rejected(test, &vb_fence_mib_ops, "-1024");
	snprintf(val, sizeof(val), "%u", VB_HINT_FENCE_MIB_MIN / 2);
	if (VB_HINT_FENCE_MIB_MIN > 1)
		vb_expect_rejected(test, &vb_fence_mib_ops, val);
	snprintf(val, sizeof(val), "%u", VB_HINT_FENCE_MIB_MAX * 2);
	vb_expect_rejected(test, &vb_fence_mib_ops, val);
	vb_expect_rejected(test, &vb_fence_mib_ops, "abc");
}

static void host_discards_takes_its_three_words_only(struct kunit *test)
{
	static const char * const bad[] = {
		"", "1", "0", "true", "Yes", "auto2", "y", "no no",
	};
	char *buf = kunit_kzalloc(test, PAGE_SIZE, GFP_KERNEL);
	struct kernel_param kp = { .name = "vb_test" };
	static const char * const good[] = { "auto", "no", "yes\n" };
	unsigned int i;
	int v;

	KUNIT_ASSERT_NOT_NULL(test, buf);
	kp.arg = &v;
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		v = VB_HOST_DISCARDS_NO;
		KUNIT_EXPECT_EQ_MSG(test, vb_host_discards_ops.set(bad[i], &kp),
				    -EINVAL, "'%s' accepted", bad[i]);
		KUNIT_EXPECT_EQ(test, v, VB_HOST_DISCARDS_NO);
	}
	for (i = 0; i < ARRAY_SIZE(good); i++) {
		KUNIT_EXPECT_EQ(test, vb_host_discards_ops.set(good[i], &kp), 0);
		KUNIT_EXPECT_GT(test, vb_host_discards_ops.get(buf, &kp), 0);
		KUNIT_EXPECT_EQ(test, strncmp(strim(buf), good[i], 2), 0);
	}
	KUNIT_EXPECT_EQ(test, v, VB_HOST_DISCARDS_YES);
}

static void firecracker_is_known_by_its_acpi_names(struct kunit *test)
{
	/* Firecracker's FADT, and its OEM id alone (older FADT revisions). */
	KUNIT_EXPECT_TRUE(test, vb_acpi_names_firecracker("FIRECK", "FIRECKVM"));
	KUNIT_EXPECT_TRUE(test, vb_acpi_names_firecracker("FIRECK", "\0\0\0\0\0\0\0"));
	KUNIT_EXPECT_TRUE(test, vb_acpi_names_firecracker("ACME  ", "FIRECKVM"));
	/* QEMU, and a FADT without a hypervisor id. */
	KUNIT_EXPECT_FALSE(test, vb_acpi_names_firecracker("BOCHS ", "\0\0\0\0\0\0\0"));
	KUNIT_EXPECT_FALSE(test, vb_acpi_names_firecracker("BOCHS ", "QEMU\0\0\0"));
	/* Near misses. */
	KUNIT_EXPECT_FALSE(test, vb_acpi_names_firecracker("FIRECR", "FIRECKV\0"));
	KUNIT_EXPECT_FALSE(test, vb_acpi_names_firecracker("fireck", "fireckvm"));
}

static struct kunit_case vb_hint_params_cases[] = {
	KUNIT_CASE(min_order_accepts_every_page_order),
	KUNIT_CASE(min_order_rejects_orders_past_the_largest),
	KUNIT_CASE(budget_accepts_one_to_max),
	KUNIT_CASE(budget_rejects_zero_and_above_max),
	KUNIT_CASE(params_reject_garbage),
	KUNIT_CASE(params_read_back_what_was_set),
	KUNIT_CASE(fence_mib_accepts_powers_of_two_from_the_largest_block),
	KUNIT_CASE(fence_mib_rejects_other_sizes),
	KUNIT_CASE(host_discards_takes_its_three_words_only),
	KUNIT_CASE(firecracker_is_known_by_its_acpi_names),
	{}
};

static struct kunit_suite vb_hint_params_suite = {
	.name = "vb_hint_params",
	.test_cases = vb_hint_params_cases,
};

kunit_test_suites(&vb_hint_params_suite);
