# Warnings for every target of the project. -Werror unless CAIRN_WERROR=OFF.
add_compile_options(-Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
	-Wno-unused-parameter -Wvla -Wformat=2)
if(CAIRN_WERROR)
	add_compile_options(-Werror)
endif()
